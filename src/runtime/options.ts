import { assertSeconds } from '../backends/ttl.js';
import { CacheArgumentError } from '../errors.js';

/** A cache key: a fixed string, or a function of the call's arguments (`this` is the instance). */
export type KeyOption = string | ((...args: any[]) => string);

/** Options shared by `@Cached`, `@CachePut`, `@CacheEvict` and `cached(fn)`. */
export interface TargetOptions {
  /**
   * The entry's key instead of the one derived from the arguments. NOT scoped by class or
   * method: two methods whose keys are equal share the entry on purpose (that is how
   * `@CacheEvict` finds what `@Cached` stored). `keyPrefix` and `namespace` still apply.
   * A function runs with `this` = the instance (undefined under `CacheModule.invalidate`), so
   * arguments it ignores raise no `CacheKeyError`. A method with a custom key has no method
   * generation: `CacheModule.invalidate(Class, 'method')` without arguments refuses it.
   * Default: `keyPrefix` + `namespace:` + `Class.method` (or `cached`'s `name`) + `:` + the
   * canonical encoding of the arguments.
   */
  key?: KeyOption;
  /** A name given to `CacheModule.register(name, backend)`; resolved at call time. Default: the default backend. */
  backend?: string;
  /** Prepended to the key (after `keyPrefix`), followed by `:`; applies to custom keys too. Default: none. */
  namespace?: string;
}

/** Options of `@Cached` (all optional). */
export interface CachedOptions extends TargetOptions {
  /**
   * Seconds the value is kept, fractions allowed; `0` = never expires; at most 2^31 − 1 (about
   * 68 years, what every backend stores), or the decorator throws a `TypeError`.
   * Default: the backend's `defaultTtl`, else `CacheModule.configure({ defaultTtl })` (300).
   */
  ttl?: number;
  /**
   * Cache only when it returns true for the call's arguments (`this` = the instance); otherwise
   * the method just runs: no lookup, no store, neither hit nor miss. Default: always cache.
   */
  condition?: (...args: any[]) => boolean;
  /**
   * Do not store the result when it returns true (the result is still returned; the next call
   * misses again). Runs after the method, with its result and arguments. Default: store every result.
   */
  unless?: (result: any, ...args: any[]) => boolean;
  /**
   * Seconds past `ttl` during which a stale value is still served, at once, while one background
   * call refreshes it; a refresh that throws keeps the stale value and emits an `error` event
   * (`operation: 'refresh'`). The backend keeps the entry `ttl + staleTtl` seconds. Has no effect
   * with `ttl: 0` (never stale). Default 0: an expired entry is a miss.
   */
  staleTtl?: number;
  /**
   * Tags to invalidate the entry by with `CacheModule.invalidateTags` (strings, or a function of
   * the arguments returning them, `this` = the instance). Recorded in the entry's own backend,
   * for as long as the entry lives, at the cost of a few small writes per tag on each store.
   * Default: none.
   */
  tags?: readonly string[] | ((...args: any[]) => readonly string[]);
  /**
   * Distributed single flight on a shared backend: of the processes missing a key at once, one
   * takes a lock entry and computes; the others wait for its value (up to `lockTimeout`, then
   * compute themselves). Default: `CacheModule.configure({ lock })`, else false.
   */
  lock?: boolean;
  /**
   * Seconds a process waits for another's computation (polling the backend) before computing
   * itself; only with `lock`. Default 5.
   */
  lockTimeout?: number;
  /**
   * Seconds the lock entry lives, so a holder that dies releases it by expiry; only with `lock`.
   * Keep it above the method's longest computation, or a second process may start computing.
   * Must be > 0. Default 10.
   */
  lockTtl?: number;
  /**
   * Probabilistic early expiration (XFetch): a hit near expiry refreshes the value in the
   * background with a probability that grows as expiry approaches, scaled by how long the
   * method took to compute and by `beta` (`true` = 1; larger refreshes earlier). Needs a
   * `ttl` other than 0; combines with `staleTtl`. Default false.
   */
  earlyRefresh?: boolean | number;
  /**
   * Spreads the stored ttl at random by ± this fraction (0.1 = ±10 %), so entries written
   * together do not expire together. In [0, 1); applies to `ttl`, not to `staleTtl`, and not
   * to `ttl: 0`. Default 0.
   */
  jitter?: number;
}

/** Options of `cached(fn, options)`: those of `@Cached`, plus the required `name`. */
export interface CachedFunctionOptions extends CachedOptions {
  /** Required: stands in for `Class.method` in keys, stats and events, stable under minification. */
  name: string;
}

/** Options of `@CachePut`: always runs the method and stores its result under `key`. */
export interface CachePutOptions extends TargetOptions {
  /** Required: the key to store the result under, usually the one a `@Cached` reader uses. */
  key: KeyOption;
  /**
   * Seconds the stored result is kept, fractions allowed; `0` = never expires.
   * Default: the backend's `defaultTtl`, else `CacheModule.configure({ defaultTtl })` (300).
   */
  ttl?: number;
  /** Store only when it returns true for the arguments (the method always runs). Default: always store. */
  condition?: CachedOptions['condition'];
  /** Do not store when it returns true for the result and arguments. Default: store every result. */
  unless?: CachedOptions['unless'];
}

/** Options of `@CacheEvict`: deletes the entry for `key` (or clears the backend) when the method runs. */
export interface CacheEvictOptions extends TargetOptions {
  /**
   * Clear every entry of the backend instead of one key: calls its `clear()`, which removes only
   * entries under the backend's own `prefix` (Redis refuses without one). `key` is then unused.
   * Default false.
   */
  allEntries?: boolean;
  /** Evict before the method runs (and even if it then fails), instead of after it succeeds. Default false. */
  beforeInvocation?: boolean;
}

function fail(decorator: string, message: string): never {
  throw new CacheArgumentError(`${decorator}: ${message}`);
}

function checkOptional(decorator: string, name: string, value: unknown, type: 'string' | 'function' | 'boolean'): void {
  if (value !== undefined && typeof value !== type) fail(decorator, `\`${name}\` must be a ${type}, got ${typeof value}`);
}

function checkSeconds(decorator: string, name: string, value: unknown): void {
  if (value === undefined) return;
  try {
    assertSeconds(value, `\`${name}\``);
  } catch (error) {
    fail(decorator, (error as Error).message);
  }
}

/** Validates at decoration time so that a typo fails when the class loads, not in production traffic. */
export function validateOptions(
  decorator: string,
  options: Partial<CachedFunctionOptions & CacheEvictOptions> | undefined,
  { keyRequired = false } = {},
): void {
  if (options === undefined) {
    if (keyRequired) fail(decorator, 'needs a `key`');
    return;
  }
  if (typeof options !== 'object' || options === null) fail(decorator, 'options must be an object');
  const { key, tags } = options;
  if (key === undefined ? keyRequired : typeof key !== 'string' && typeof key !== 'function') {
    fail(decorator, `\`key\` must be a string or a function of the arguments returning a string, got ${typeof key}`);
  }
  checkSeconds(decorator, 'ttl', options.ttl);
  checkSeconds(decorator, 'staleTtl', options.staleTtl);
  checkSeconds(decorator, 'lockTimeout', options.lockTimeout);
  checkSeconds(decorator, 'lockTtl', options.lockTtl);
  if (options.lockTtl === 0) fail(decorator, '`lockTtl` must be > 0: a lock that never expires outlives a holder that dies');
  checkOptional(decorator, 'lock', options.lock, 'boolean');
  const { earlyRefresh, jitter } = options;
  if (
    earlyRefresh !== undefined &&
    typeof earlyRefresh !== 'boolean' &&
    !(typeof earlyRefresh === 'number' && earlyRefresh > 0 && Number.isFinite(earlyRefresh))
  ) {
    fail(decorator, `\`earlyRefresh\` must be true or a beta > 0, got ${String(earlyRefresh)}`);
  }
  if (jitter !== undefined && !(typeof jitter === 'number' && jitter >= 0 && jitter < 1)) {
    fail(decorator, `\`jitter\` must be a fraction in [0, 1), got ${String(jitter)}`);
  }
  checkOptional(decorator, 'backend', options.backend, 'string');
  checkOptional(decorator, 'namespace', options.namespace, 'string');
  checkOptional(decorator, 'condition', options.condition, 'function');
  checkOptional(decorator, 'unless', options.unless, 'function');
  checkOptional(decorator, 'allEntries', options.allEntries, 'boolean');
  checkOptional(decorator, 'beforeInvocation', options.beforeInvocation, 'boolean');
  if (tags !== undefined && typeof tags !== 'function' && !(Array.isArray(tags) && tags.every((t) => typeof t === 'string'))) {
    fail(decorator, '`tags` must be an array of strings or a function of the arguments returning one');
  }
}
