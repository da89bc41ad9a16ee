// The channels moved below the backends (src/channels.ts), which publish on them; this path is
// kept until runtime/cached-call.ts imports them from there.
export * from '../channels.js';
