import type { CacheBackend } from './backends/backend.js';
import { assertSeconds } from './backends/ttl.js';
import { callSiteOf } from './decorators/adapter.js';
import { CacheArgumentError, CacheConfigError, notRegisteredError } from './errors.js';
import { DEFAULT_LEARNT_KEYS_BYTES, setLearntKeysBytes } from './keys/known-keys.js';
import { isCachedCall, type CachedCall } from './runtime/cached-call.js';
import { expireRecord } from './runtime/records.js';
import { backendContext, moduleConfig, resetConfig, type CacheModuleOptions } from './module/config.js';
import { tagKey } from './module/keyspace.js';
import type { CacheEventName, CacheListener } from './module/events.js';
import { DEFAULT_BACKEND, state } from './module/state.js';
import type { CacheStats } from './module/stats.js';

function assertBackend(backend: unknown, name: string): asserts backend is CacheBackend {
  const candidate = backend as Partial<CacheBackend> | null;
  if (typeof candidate?.lookup !== 'function' || typeof candidate.set !== 'function') {
    throw new CacheArgumentError(
      `hoard: CacheModule.register('${name}', …): expected a CacheBackend (MemoryBackend, RedisBackend, …)`,
    );
  }
}

function cachedCallOf(target: Function, method: string, call: string): CachedCall {
  const site = callSiteOf(target.prototype?.[method]) ?? callSiteOf((target as unknown as Record<string, unknown>)[method]);
  if (!isCachedCall(site))
    throw new CacheConfigError(`CacheModule.${call}: ${target.name}.${method} is not decorated with @Cached`);
  return site;
}

function tagRecords(tags: readonly string[], call: string): string[] {
  if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) {
    throw new CacheArgumentError(`CacheModule.${call}: expected an array of strings`);
  }
  return tags.map(tagKey);
}

/**
 * Runs `work` once per registered backend (a backend registered under two names once), all of
 * them tried so that one that is down does not keep the others' entries alive; rejects with the
 * first failure.
 */
async function onEveryBackend(work: (backend: CacheBackend, name: string) => Promise<void>): Promise<void> {
  const backends = new Map<CacheBackend, string>();
  for (const { name, backend } of state.backends.values()) if (!backends.has(backend)) backends.set(backend, name);
  const outcomes = await Promise.allSettled([...backends].map(([backend, name]) => work(backend, name)));
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The process-wide registry of backends, configuration, events and stats. Register backends
 * once at startup; decorators look their backend up when the method is called.
 *
 * Who closes what: whoever creates a backend closes it. The registry only lends names.
 * `close()` is the shortcut for an application that registered everything itself: it closes
 * what is registered at that moment. A backend replaced by `register` leaves the registry
 * entirely — `register` hands it back, and its creator closes it when nothing else uses it.
 * Code that shares the process with others (a NestJS module, a test) registers, and on
 * shutdown calls `unregister(name, backend)` — which removes the name only while it still
 * maps to that backend — then closes its own backends.
 */
export const CacheModule = {
  /**
   * `register(backend)` sets the default backend; `register(name, backend)` a named one.
   * Registering a name again replaces it: the replaced backend is returned, not closed.
   */
  register(nameOrBackend: string | CacheBackend, backend?: CacheBackend): CacheBackend | undefined {
    const name = typeof nameOrBackend === 'string' ? nameOrBackend : DEFAULT_BACKEND;
    const chosen = typeof nameOrBackend === 'string' ? backend : nameOrBackend;
    assertBackend(chosen, name);
    chosen.attach?.(backendContext);
    return state.register(name, chosen);
  },

  /**
   * Removes the registration of `name` (`'default'` for the default backend); with `backend`,
   * only while `name` still maps to that backend, so a name someone else registered since is
   * left alone. True when it removed it. Closes nothing.
   */
  unregister(name: string, backend?: CacheBackend): boolean {
    return state.unregister(name, backend);
  },

  /** The backend registered under `name` (the default one when omitted). */
  get(name: string = DEFAULT_BACKEND): CacheBackend {
    const registration = state.backends.get(name);
    if (!registration) throw notRegisteredError('', name);
    return registration.backend;
  },

  /** Module-wide options; unspecified ones keep their current value. */
  configure(options: CacheModuleOptions): void {
    if (options.defaultTtl !== undefined) assertSeconds(options.defaultTtl, 'CacheModule.configure: `defaultTtl`');
    if (options.expireGrace !== undefined) assertSeconds(options.expireGrace, 'CacheModule.configure: `expireGrace`');
    if (options.keyPrefix !== undefined && typeof options.keyPrefix !== 'string') {
      throw new CacheArgumentError('CacheModule.configure: `keyPrefix` must be a string');
    }
    if (options.lock !== undefined && typeof options.lock !== 'boolean') {
      throw new CacheArgumentError('CacheModule.configure: `lock` must be a boolean');
    }
    const { version } = options;
    if (version !== undefined && !(typeof version === 'string' || (typeof version === 'number' && Number.isFinite(version)))) {
      throw new CacheArgumentError('CacheModule.configure: `version` must be a string or a number');
    }
    const { learntKeysBytes, ...rest } = options;
    if (learntKeysBytes !== undefined) {
      if (!(typeof learntKeysBytes === 'number' && Number.isFinite(learntKeysBytes) && learntKeysBytes >= 0)) {
        throw new CacheArgumentError(
          `CacheModule.configure: \`learntKeysBytes\` must be a number of bytes ≥ 0, got ${String(learntKeysBytes)}`,
        );
      }
      setLearntKeysBytes(learntKeysBytes);
    }
    Object.assign(moduleConfig(), rest);
    state.version++;
  },

  /** Forgets registrations, configuration, listeners and stats: for test isolation. Closes nothing. */
  reset(): void {
    resetConfig();
    setLearntKeysBytes(DEFAULT_LEARNT_KEYS_BYTES);
    state.reset();
  },

  /**
   * Closes every backend registered right now, once each (clients passed in ready-made stay
   * open). Backends replaced or unregistered before are not the registry's to close.
   */
  async close(): Promise<void> {
    const backends = new Set([...state.backends.values()].map((registration) => registration.backend));
    await Promise.all([...backends].map((backend) => backend.close()));
  },

  /**
   * With arguments: deletes the entry `@Cached` stored on `Class.prototype[method]` (or a static
   * method) for them; key functions run with `this` undefined; true when an entry existed.
   * Without: every entry of the method, in O(1) — its entries carry the token of the method's
   * generation record, and this replaces the token (docs/invalidation.md).
   */
  async invalidate(target: Function, method: string, ...args: unknown[]): Promise<boolean> {
    const site = cachedCallOf(target, method, 'invalidate');
    if (args.length !== 0) return site.invalidate(target, args);
    await site.invalidateAll(target);
    return true;
  },

  /**
   * Soft `invalidate`: the entry stored for `args` (without arguments, every entry of the method,
   * in O(1)) is stale instead of gone. The next caller gets the stale value at once while one
   * refresh runs (one across processes with `lock`); a refresh that fails keeps serving it, for
   * `expireGrace` seconds at most (docs/invalidation.md). True when an entry existed (always
   * true without arguments).
   */
  async expire(target: Function, method: string, ...args: unknown[]): Promise<boolean> {
    const site = cachedCallOf(target, method, 'expire');
    if (args.length !== 0) return site.expire(target, args);
    await site.invalidateAll(target, true);
    return true;
  },

  /**
   * Every entry stored with any of these tags is a miss from now on, on every registered backend
   * (a tiered backend's bus drops the other processes' memory copies). O(1) per tag and backend:
   * it deletes the tags' records (docs/keys.md), and an entry stamped with a record's token that
   * is gone can never be served again. Emits `evict` with each record's key. Rejects with the
   * first backend's failure once every backend was tried.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const records = tagRecords(tags, 'invalidateTags');
    const evict = state.events.evict;
    await onEveryBackend(async (backend, name) => {
      await backend.deleteMany(records);
      if (evict.wanted) for (const key of records) evict.emit({ backend: name, key });
    });
  },

  /**
   * Soft `invalidateTags`: every entry stored with any of these tags is stale instead of gone,
   * served while one refresh runs, for `expireGrace` seconds at most. O(1) per tag and backend,
   * across processes as `invalidateTags`; a tag record lost meanwhile makes its entries miss.
   */
  async expireTags(tags: readonly string[]): Promise<void> {
    const records = tagRecords(tags, 'expireTags');
    const until = Date.now() + moduleConfig().expireGrace * 1000;
    await onEveryBackend(async (backend) => {
      for (const record of records) await expireRecord(backend, record, until);
    });
  },

  /** Calls `listener` with each event of that name, synchronously, in the order listeners were added. */
  on(event: CacheEventName, listener: CacheListener): void {
    state.events.on(event, listener);
  },

  /** Removes a listener added with `on`. */
  off(event: CacheEventName, listener: CacheListener): void {
    state.events.off(event, listener);
  },

  /** Hit, miss and error counts with hit ratio, per backend name and per `Class.method`. */
  stats(): CacheStats {
    return { backends: state.backendCounters.snapshot(), methods: state.methodCounters.snapshot() };
  },
};
