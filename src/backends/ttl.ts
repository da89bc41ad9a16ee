import { CacheArgumentError } from '../errors.js';
import { DEFAULT_TTL, MAX_TTL, type BackendContext } from './backend.js';

/** Whether `value` is a number of seconds from 0 to {@link MAX_TTL}. */
export function isSeconds(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_TTL;
}

/**
 * The TypeError for a `value` that is not {@link isSeconds}. Hot paths build it only for a bad
 * value: a message naming the key would otherwise be built on every write.
 */
export function secondsError(value: unknown, what: string): CacheArgumentError {
  return new CacheArgumentError(
    `${what} must be a number of seconds from 0 to ${MAX_TTL} (0 = never expires), got ${String(value)}`,
  );
}

/** Throws a TypeError unless `value` is a number of seconds from 0 to {@link MAX_TTL}. */
export function assertSeconds(value: unknown, what: string): asserts value is number {
  if (!isSeconds(value)) throw secondsError(value, what);
}

/** Throws a TypeError unless `value` is a finite number of seconds > 0: a timeout, a lifetime that cannot be "forever". */
export function assertPositiveSeconds(value: unknown, what: string): asserts value is number {
  if (!isSeconds(value) || value === 0) {
    throw new CacheArgumentError(`${what} must be a finite number of seconds > 0, got ${String(value)}`);
  }
}

/**
 * The TTL to store with: the call's, else the backend's own `defaultTtl`, else the module's (handed
 * to the backend by `CacheModule.register`, see {@link BackendContext}), else {@link DEFAULT_TTL}.
 */
export function effectiveTtl(
  ttl: number | undefined,
  backendDefault: number | undefined,
  context: BackendContext | undefined,
): number {
  return ttl ?? backendDefault ?? context?.defaultTtl ?? DEFAULT_TTL;
}
