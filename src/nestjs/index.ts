/**
 * hoard for NestJS (`hoard/nestjs`). Needs `@nestjs/common` and `@nestjs/core` 10 or 11, and
 * Nest's legacy decorators (`experimentalDecorators` + `emitDecoratorMetadata`).
 */
export { HoardModule, InjectCacheBackend } from './hoard.module.js';
export { HoardTestingModule, type HoardTestingOptions, type TestingBackend } from './testing.js';
export { getCacheBackendToken, HOARD_MODULE_OPTIONS } from './tokens.js';
export type { HoardModuleAsyncOptions, HoardModuleOptions, HoardModuleRootOptions, HoardOptionsFactory } from './options.js';
