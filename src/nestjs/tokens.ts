import { DEFAULT_BACKEND } from '../module/state.js';

/** The injection token of the options `HoardModule` was given (override it in tests). */
export const HOARD_MODULE_OPTIONS = 'hoard:module-options';

/** Internal: what the module registered, created with its providers. */
export const HOARD_REGISTRATIONS = 'hoard:registrations';

/** The injection token of the backend registered as `name` (`'default'` when omitted). */
export function getCacheBackendToken(name: string = DEFAULT_BACKEND): string {
  return `hoard:backend:${name}`;
}

const REQUESTED = Symbol.for('hoard.nestjs.requested-names');

/**
 * Names asked for by `@InjectCacheBackend(name)` anywhere, so `forRootAsync` — whose backends
 * are known only once its factory ran — still provides a token for each of them. On
 * `globalThis`, like the registry, so a decorator from one loaded copy of hoard (ES module or
 * CommonJS) is seen by a HoardModule from the other.
 */
export const requestedNames: Set<string> = ((globalThis as { [REQUESTED]?: Set<string> })[REQUESTED] ??= new Set([
  DEFAULT_BACKEND,
]));
