/** Module-wide options, set with `CacheModule.configure`. */
export interface CacheModuleOptions {
  /** Seconds an entry lives when neither the decorator nor the backend says; `0` = forever. Default 300. */
  defaultTtl?: number;
  /**
   * Prepended as is to every hoard key, custom keys included (e.g. `'myapp:'`: bring your own
   * separator). A backend's own `prefix` goes in front of it on the server. Default `''`.
   */
  keyPrefix?: string;
  /** `lock` for every `@Cached` that does not say otherwise (distributed single flight). Default false. */
  lock?: boolean;
  /**
   * Part of every key (`v<version>:` after `keyPrefix`): bump it in a deploy that changes what
   * methods return, and every old entry is left behind at once. Default: none.
   */
  version?: string | number;
}

export type ModuleConfig = Required<Omit<CacheModuleOptions, 'version'>> & Pick<CacheModuleOptions, 'version'>;

const DEFAULT_CONFIG: Readonly<ModuleConfig> = Object.freeze({ defaultTtl: 300, keyPrefix: '', lock: false });

const CONFIG = Symbol.for('hoard.config');
type Holder = { [CONFIG]?: ModuleConfig };

/**
 * The live configuration. Kept on `globalThis` so that two copies of the package loaded in one
 * process (a bundler quirk, a nested node_modules) still share one configuration.
 */
export function moduleConfig(): ModuleConfig {
  return ((globalThis as Holder)[CONFIG] ??= { ...DEFAULT_CONFIG });
}

export function resetConfig(): void {
  (globalThis as Holder)[CONFIG] = { ...DEFAULT_CONFIG };
}

/**
 * The longest ttl hoard accepts, in seconds: 2^31 − 1 (about 68 years), which every backend
 * stores as asked. Redis takes it in milliseconds well inside its 64-bit range (a ttl of 1e16 s
 * would overflow it and fail every store); memcached, whose clock ends in 2038, keeps such an
 * entry until then; the memory backend's expiry times stay exact doubles.
 */
export const MAX_TTL = 2 ** 31 - 1;

/** Whether `value` is a number of seconds from 0 to {@link MAX_TTL}. */
export function isSeconds(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_TTL;
}

/**
 * The TypeError for a `value` that is not {@link isSeconds}. Hot paths build it only for a bad
 * value: a message naming the key would otherwise be built on every write.
 */
export function secondsError(value: unknown, what: string): TypeError {
  return new TypeError(`${what} must be a number of seconds from 0 to ${MAX_TTL} (0 = never expires), got ${String(value)}`);
}

/** Throws a TypeError unless `value` is a number of seconds from 0 to {@link MAX_TTL}. */
export function assertSeconds(value: unknown, what: string): asserts value is number {
  if (!isSeconds(value)) throw secondsError(value, what);
}

/** The TTL to store with: the call's, else the backend's `defaultTtl`, else the module's. */
export function effectiveTtl(ttl: number | undefined, backendDefault: number | undefined): number {
  return ttl ?? backendDefault ?? moduleConfig().defaultTtl;
}
