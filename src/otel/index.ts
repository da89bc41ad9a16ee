export { instrumentHoard, type HoardInstrumentationOptions } from './instrument.js';
export { ATTR, type CallResult } from './attributes.js';
