import { assertSeconds } from '../module/config.js';


/** A cache key: a fixed string, or a function of the call's arguments (`this` is the instance). */
export type KeyOption = string | ((...args: any[]) => string);

/** Options shared by `@Cached`, `@CachePut`, `@CacheEvict` and `cached(fn)`. */
export interface TargetOptions {
  /**
   * The entry's key instead of the one derived from the arguments. NOT scoped by class or
   * method: two methods whose keys are equal share the entry on purpose (that is how
   * `@CacheEvict` finds what `@Cached` stored). `keyPrefix` and `namespace` still apply.
   */
  key?: KeyOption;
  /** A name given to `CacheModule.register(name, backend)`. Default: the default backend. */
  backend?: string;
  /** Prepended to the key, followed by `:`. */
  namespace?: string;
}

export interface CachedOptions extends TargetOptions {
  /**
   * Seconds the value is kept, fractions allowed; `0` = never expires.
   * Default: the backend's `defaultTtl`, else `CacheModule.configure({ defaultTtl })` (300).
   */
  ttl?: number;
  /** Cache only when it returns true for the call's arguments; otherwise the method just runs. */
  condition?: (...args: any[]) => boolean;
  /** Do not store the result when it returns true (the result is still returned). */
  unless?: (result: any, ...args: any[]) => boolean;
  /** Seconds past `ttl` during which a stale value may be served while one refresh runs. */
  staleTtl?: number;
  /** Tags to invalidate the entry by with `CacheModule.invalidateTags`. */
  tags?: readonly string[] | ((...args: any[]) => readonly string[]);
  /**
   * Distributed single flight on a shared backend: of the processes missing a key at once, one
   * takes a lock entry and computes; the others wait for its value (up to `lockTimeout`, then
   * compute themselves). Default: `CacheModule.configure({ lock })`, else false.
   */
  lock?: boolean;
  /** Seconds a process waits for another's computation before computing itself. Default 5. */
  lockTimeout?: number;
  /** Seconds the lock entry lives, so a holder that dies releases it by expiry. Default 10. */
  lockTtl?: number;
  /**
   * Probabilistic early expiration (XFetch): a hit near expiry refreshes the value in the
   * background with a probability that grows as expiry approaches, scaled by how long the
   * method took to compute and by `beta` (`true` = 1; larger refreshes earlier).
   */
  earlyRefresh?: boolean | number;
  /** Spreads the stored ttl at random by ± this fraction (0.1 = ±10 %), so entries do not expire together. */
  jitter?: number;
}

export interface CachedFunctionOptions extends CachedOptions {
  /** Required: stands in for `Class.method` in keys, stats and events, stable under minification. */
  name: string;
}

export interface CachePutOptions extends TargetOptions {
  key: KeyOption;
  ttl?: number;
  condition?: CachedOptions['condition'];
  unless?: CachedOptions['unless'];
}

export interface CacheEvictOptions extends TargetOptions {
  /** Clear every entry of the backend (under its own prefix only) instead of one key. */
  allEntries?: boolean;
  /** Evict before the method runs (and even if it fails), instead of after it succeeds. */
  beforeInvocation?: boolean;
}

function fail(decorator: string, message: string): never {
  throw new TypeError(`${decorator}: ${message}`);
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
  if (earlyRefresh !== undefined && typeof earlyRefresh !== 'boolean' && !(typeof earlyRefresh === 'number' && earlyRefresh > 0 && Number.isFinite(earlyRefresh))) {
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
