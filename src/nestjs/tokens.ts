import { DEFAULT_BACKEND } from '../module/state.js';

/** The injection token of the options `HoardModule` was given (override it in tests). */
export const HOARD_MODULE_OPTIONS = 'hoard:module-options';

/** Internal: what the module registered, created with its providers. */
export const HOARD_REGISTRATIONS = 'hoard:registrations';

/** The injection token of the backend registered as `name` (`'default'` when omitted). */
export function getCacheBackendToken(name: string = DEFAULT_BACKEND): string {
  return `hoard:backend:${name}`;
}

/**
 * Names asked for by `@InjectCacheBackend(name)` anywhere, so `forRootAsync` — whose backends
 * are known only once its factory ran — still provides a token for each of them.
 */
export const requestedNames = new Set<string>([DEFAULT_BACKEND]);
