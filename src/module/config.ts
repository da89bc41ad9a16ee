import { DEFAULT_TTL, type BackendContext } from '../backends/backend.js';

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
  /**
   * Bytes (estimated), process-wide, for the keys hoard remembers for argument lists it has seen
   * before, so a hit need not encode them again. Past it, the method holding the most forgets
   * its keys (they are encoded again, nothing else changes). Default 4 MiB; `0` = remember none.
   */
  learntKeysBytes?: number;
  /**
   * Seconds an entry expired by `CacheModule.expire` or `expireTags` may still be served stale
   * while it is refreshed (a failing refresh keeps serving it): past it, the entry misses.
   * Never longer than the entry's own ttl. Default 300.
   */
  expireGrace?: number;
}

export type ModuleConfig = Required<Omit<CacheModuleOptions, 'version' | 'learntKeysBytes'>> &
  Pick<CacheModuleOptions, 'version'>;

/** Default of `expireGrace`, in seconds. */
export const DEFAULT_EXPIRE_GRACE = 300;

const DEFAULT_CONFIG: Readonly<ModuleConfig> = Object.freeze({
  defaultTtl: DEFAULT_TTL,
  keyPrefix: '',
  lock: false,
  expireGrace: DEFAULT_EXPIRE_GRACE,
});

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
 * What `CacheModule.register` hands every backend it registers. Read live, so a `configure` after
 * `register` reaches the backend too; backends never read the module's configuration themselves.
 */
export const backendContext: BackendContext = Object.freeze({
  get defaultTtl(): number {
    return moduleConfig().defaultTtl;
  },
});
