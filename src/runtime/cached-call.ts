import { MISS, type CacheBackend } from '../backends/backend.js';
import { CacheConfigError, CacheSerializationError } from '../errors.js';
import { generationKey, tagKey } from '../module/keyspace.js';
import { callChannel, computeChannel, refreshChannel, staleChannel, traced, type ComputeMessage } from '../module/channels.js';
import { moduleConfig } from '../module/config.js';
import { state, type Registration } from '../module/state.js';
import { CallSite, isThenable } from './call-site.js';
import { computeUnderLock, DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_TTL, refreshUnderLock } from './lock.js';
import { isObservable, observableClassOf, singleValue, toObservable, type ObservableLike } from './observable.js';
import type { CachedOptions } from './options.js';
import { expired, expireRecord, isExpired, isStamped, newToken, readChecked, withinGrace, type Checked } from './records.js';

/**
 * Whether `site` is a `@Cached` one. Asked by shape, not with `instanceof`: the site may come
 * from the other build of hoard loaded in this process, whose CachedCall is another class.
 */
export function isCachedCall(site: CallSite | undefined): site is CachedCall {
  return typeof (site as Partial<CachedCall> | undefined)?.invalidateAll === 'function';
}

/** An entry and, where the backend can tell it, the seconds it has left (0 = never expires). */
async function withTtl(backend: CacheBackend, key: string): Promise<{ value: unknown; ttl?: number } | typeof MISS> {
  if (backend.lookupWithTtl !== undefined) return backend.lookupWithTtl(key);
  // MemoryBackend tells it synchronously, outside the backend contract.
  const peek = (backend as { peekWithTtl?: (key: string) => unknown }).peekWithTtl;
  if (peek !== undefined) return peek.call(backend, key) as { value: unknown; ttl: number } | typeof MISS;
  const value = await backend.lookup(key);
  return value === MISS ? MISS : { value };
}

/**
 * With `staleTtl` or `earlyRefresh` an entry carries, beside the value, the moment it stops
 * being fresh (ms since the epoch, 0 = never) and how long the method took to compute it.
 */
const FRESH_UNTIL = '__hoardFreshUntil';
interface Entry {
  [FRESH_UNTIL]: number;
  value: unknown;
  computeMs: number;
}

function isEntry(entry: unknown): entry is Entry {
  return typeof (entry as Entry | null)?.[FRESH_UNTIL] === 'number';
}

/**
 * The one call path of `@Cached` and `cached(fn)`: lookup → single flight → compute → store.
 *
 * A synchronous backend (memory) is read synchronously, so a hit on a synchronous method
 * returns its value directly and allocates nothing beyond the key. An asynchronous backend is
 * read once per key however many callers wait: callers arriving while a lookup or computation
 * is under way join it (single flight), and a backend fault turns into running the method.
 */
export class CachedCall extends CallSite {
  declare protected readonly options: CachedOptions;

  /** Learned from results: a hit on a memory backend is returned as a Promise once results were. */
  private returnsPromise: boolean;
  private readonly staleTtl: number;
  /** XFetch's beta; 0 = no early refresh. */
  private readonly beta: number;
  /** Entries carry freshness (staleTtl, earlyRefresh); false keeps them bare and the hit path short. */
  private readonly enveloped: boolean;
  /** The ttl must be known here (not left to the backend's default) to derive what is written. */
  private readonly derivesTtl: boolean;

  /**
   * The records (runtime/records.ts) every entry of this method is checked against: its
   * generation, and its tags when they are a fixed list. A `tags` function adds its own per call.
   */
  private records: readonly string[] | undefined;
  /** Whether a lookup reads records: false keeps a memory hit without tags or generation as short as it was. */
  private checks = false;
  /**
   * Set by `CacheModule.invalidate(Class, 'method')` in this process. A memory backend is this
   * process's alone, so until then no generation was ever in play there and lookups skip it.
   */
  private invalidatedHere = false;

  constructor(...args: ConstructorParameters<typeof CallSite>) {
    super(...args);
    const { staleTtl = 0, earlyRefresh = false, jitter = 0 } = this.options;
    this.returnsPromise = this.callee.async;
    this.staleTtl = staleTtl;
    this.beta = earlyRefresh === true ? 1 : earlyRefresh === false ? 0 : earlyRefresh;
    this.enveloped = staleTtl > 0 || this.beta > 0;
    this.derivesTtl = this.enveloped || jitter > 0;
  }

  invoke(self: unknown, args: unknown[]): unknown {
    const observable = this.callee.observable;
    return observable === undefined ? this.answer(self, args) : toObservable(observable, () => this.answer(self, args));
  }

  /** A result as cached: for a method returning an Observable, a promise of its one value. */
  private asCached(result: unknown): unknown {
    return this.callee.observable === undefined ? result : singleValue(result as ObservableLike, this.label);
  }

  private answer(self: unknown, args: unknown[]): unknown {
    const condition = this.options.condition;
    if (condition !== undefined && !condition.apply(self, args)) return this.asCached(this.callee.fn.apply(self, args));
    return callChannel.start.hasSubscribers ? this.tracedCall(self, args) : this.call(self, args);
  }

  /** A call published on `tracing:hoard:call:*` (see module/channels.ts). */
  private tracedCall(self: unknown, args: unknown[]): unknown {
    let backend: string;
    try {
      backend = this.resolve(self).name;
    } catch {
      // Not a cached call yet: the untraced path reports the setup error the usual way.
      return this.call(self, args);
    }
    return traced(callChannel, { method: this.label, backend }, () => this.call(self, args));
  }

  private call(self: unknown, args: unknown[]): unknown {
    let registration: Registration;
    let key: string | undefined;
    let known = true;
    let records: readonly string[] | undefined;
    try {
      registration = this.resolve(self);
      if (!registration.backend.synchronous) return this.viaAsyncBackend(registration, self, args);
      key = this.knownKey(args);
      if (key === undefined) {
        key = this.keyFor(self, args);
        known = false;
      }
      if (this.checks) records = this.recordsFor(self, args);
    } catch (error) {
      return this.fail(error);
    }
    let entry: unknown;
    let tokens: readonly string[] | undefined;
    let stale: boolean | undefined;
    if (records === undefined) {
      entry = registration.backend.lookup(key);
      // Only once an entry was expired in this process can a memory backend hold one.
      if (state.expiredEntries && isExpired(entry)) {
        entry = withinGrace(entry);
        stale = true;
      }
      entry = this.unchecked(entry);
    } else {
      ({ entry, tokens, stale } = readChecked(registration.backend, key, records) as Checked);
    }
    if (entry !== MISS) {
      // Learnt on a hit only: arguments seen once (a miss) would fill the trie for nothing.
      if (!known) this.learnKey(args, key);
      this.hit(registration, key);
      const value =
        stale === true
          ? this.servedStale(registration, self, args, key, entry, tokens)
          : this.enveloped
            ? this.served(registration, self, args, key, entry, tokens)
            : entry;
      return this.returnsPromise ? Promise.resolve(value) : value;
    }
    return registration.inflight.get(key) ?? this.compute(registration, self, args, key, tokens);
  }

  private hit(registration: Registration, key: string): void {
    registration.counter.hits++;
    this.counter.hits++;
    this.emit(state.events.hit, key);
  }

  private miss(registration: Registration, key: string): void {
    registration.counter.misses++;
    this.counter.misses++;
    this.emit(state.events.miss, key);
  }

  /**
   * The records a call's entry is checked against: the fixed ones, and the tags a `tags`
   * function returns for these arguments.
   */
  private recordsFor(self: unknown, args: unknown[]): readonly string[] | undefined {
    const tags = this.options.tags;
    if (typeof tags !== 'function') return this.records;
    const list: unknown = tags.apply(self, args);
    if (!Array.isArray(list) || !list.every((tag) => typeof tag === 'string')) {
      throw new CacheConfigError(
        `${this.label}: the \`tags\` function must return an array of strings, got ${Array.isArray(list) ? 'an array holding other values' : typeof list}`,
      );
    }
    const own = list.map(tagKey);
    return this.records === undefined ? own : [...this.records, ...own];
  }

  /**
   * A key that is a custom one may hold an entry a call site with records stored: one without
   * records cannot check it, so to it that entry is a miss.
   */
  private unchecked(entry: unknown): unknown {
    return this.options.key !== undefined && isStamped(entry) ? MISS : entry;
  }

  /** Miss on a synchronous backend: a synchronous result is stored at once, a promise once it settles. */
  private compute(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    tokens: readonly string[] | undefined,
  ): unknown {
    this.miss(registration, key);
    const start = this.clock();
    const result = this.run(self, args);
    if (isThenable(result)) return this.storeWhenSettled(registration, self, args, key, tokens, result, start);
    const Observable = isObservable(result) ? observableClassOf(Object.getPrototypeOf(result)) : undefined;
    if (Observable !== undefined) {
      // Learnt from this first result: from now on calls return Observables of the cached value.
      this.callee.observable = Observable;
      return toObservable(Observable, () =>
        this.storeWhenSettled(registration, self, args, key, tokens, singleValue(result as ObservableLike, this.label), start),
      );
    }
    void this.store(self, args, key, result, this.clock() - start, tokens);
    return result;
  }

  /** Registers a computation's promise for single flight, and stores its value once it settles. */
  private storeWhenSettled(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    tokens: readonly string[] | undefined,
    result: PromiseLike<unknown>,
    start: number,
  ): Promise<unknown> {
    this.returnsPromise = true;
    const inflight = registration.inflight;
    const settled = Promise.resolve(result).then(
      (value) => {
        inflight.delete(key);
        void this.store(self, args, key, value, this.clock() - start, tokens);
        return value;
      },
      (error) => {
        inflight.delete(key);
        throw error;
      },
    );
    inflight.set(key, settled);
    return settled;
  }

  private viaAsyncBackend(registration: Registration, self: unknown, args: unknown[]): Promise<unknown> {
    let key = this.knownKey(args);
    let records: readonly string[] | undefined;
    try {
      if (key === undefined) {
        key = this.keyFor(self, args);
        // Learnt now, while the arguments are as they were called: a caller may change them later.
        this.learnKey(args, key);
      }
      if (this.checks) records = this.recordsFor(self, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const inflight = registration.inflight;
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    // One reaction per call, registered in `inflight` until it settles (single flight). A hit
    // unregisters inline; the slower paths do it as they settle. Each runs after the
    // registration, since promise reactions never run synchronously.
    let lookup: unknown;
    try {
      lookup = records === undefined ? registration.backend.lookup(key) : readChecked(registration.backend, key, records);
    } catch (error) {
      lookup = Promise.reject(error);
    }
    const call = Promise.resolve(lookup).then(
      (found) => {
        let entry: unknown;
        let tokens: readonly string[] | undefined;
        let stale: boolean | undefined;
        if (records === undefined) {
          stale = isExpired(found);
          entry = this.unchecked(stale ? withinGrace(found as Parameters<typeof withinGrace>[0]) : found);
        } else {
          const checked = found as Checked;
          ({ entry, tokens, stale } = checked);
          if (checked.unreadable !== undefined) this.report(registration, key, 'get', checked.unreadable);
        }
        if (entry === MISS) return this.afterMiss(registration, self, args, key, records, tokens);
        inflight.delete(key);
        this.hit(registration, key);
        if (stale === true) return this.servedStale(registration, self, args, key, entry, tokens);
        return this.enveloped ? this.served(registration, self, args, key, entry, tokens) : entry;
      },
      (error) => {
        this.report(registration, key, 'get', error);
        // Fail-open: the caller gets a computed value; a store (or a lock) would only wait on the
        // same fault. An entry that cannot be read is a miss instead, and the new value replaces it.
        if (error instanceof CacheSerializationError) return this.afterMiss(registration, self, args, key, records, undefined);
        return this.unregisterAfter(registration, key, () => this.run(self, args));
      },
    );
    inflight.set(key, call);
    return call;
  }

  private afterMiss(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    records: readonly string[] | undefined,
    tokens: readonly string[] | undefined,
  ): Promise<unknown> {
    this.miss(registration, key);
    const compute = (): Promise<unknown> => this.computeAndStore(self, args, key, tokens);
    if (!this.locks) return this.unregisterAfter(registration, key, compute);
    const backend = registration.backend;
    return this.unregisterAfter(registration, key, () =>
      computeUnderLock({
        backend,
        key,
        lockTimeout: this.options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT,
        lockTtl: this.options.lockTtl ?? DEFAULT_LOCK_TTL,
        compute,
        poll: async () => {
          const entry =
            records === undefined ? this.unchecked(await backend.lookup(key)) : (await readChecked(backend, key, records)).entry;
          if (entry === MISS) return undefined;
          return { value: this.enveloped ? this.served(registration, self, args, key, entry, tokens) : entry };
        },
        report: (operation, error) => this.report(registration, key, operation, error),
      }),
    );
  }

  /** Whether computations take the distributed lock: the option, else the module's default. */
  private get locks(): boolean {
    return this.options.lock ?? moduleConfig().lock;
  }

  /** Runs `work` and unregisters the call from `inflight` once it settles, whichever way. */
  private async unregisterAfter(registration: Registration, key: string, work: () => unknown): Promise<unknown> {
    try {
      return await work();
    } finally {
      registration.inflight.delete(key);
    }
  }

  private async computeAndStore(
    self: unknown,
    args: unknown[],
    key: string,
    tokens: readonly string[] | undefined,
  ): Promise<unknown> {
    const start = this.clock();
    const value = await this.run(self, args);
    await this.store(self, args, key, value, this.clock() - start, tokens);
    return value;
  }

  /** The method body, published on `tracing:hoard:compute:*` when a tracer listens; its result as cached. */
  private run(self: unknown, args: unknown[]): unknown {
    if (!computeChannel.start.hasSubscribers) return this.asCached(this.callee.fn.apply(self, args));
    const message: ComputeMessage = { method: this.label, backend: this.registration.name };
    return this.asCached(traced(computeChannel, message, () => this.callee.fn.apply(self, args)));
  }

  /** Milliseconds for measuring a computation, which only entries with freshness keep: others skip the clock. */
  private clock(): number {
    return this.enveloped ? performance.now() : 0;
  }

  /**
   * The value of an entry with freshness. Past it (within `staleTtl`), or early by XFetch's
   * draw (`now - computeMs·beta·ln(random) ≥ freshUntil`), one refresh starts in the background.
   */
  private served(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    entry: unknown,
    tokens: readonly string[] | undefined,
  ): unknown {
    if (!isEntry(entry)) return entry;
    const freshUntil = entry[FRESH_UNTIL];
    if (freshUntil !== 0) {
      const now = Date.now();
      if (freshUntil <= now) return this.servedStale(registration, self, args, key, entry, tokens);
      if (this.beta !== 0 && now - entry.computeMs * this.beta * Math.log(Math.random()) >= freshUntil) {
        this.refreshInBackground(registration, self, args, key, tokens, 'early');
      }
    }
    return entry.value;
  }

  /** The value of a stale entry (past its ttl, or expired softly): one refresh replaces it. */
  private servedStale(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    entry: unknown,
    tokens: readonly string[] | undefined,
  ): unknown {
    if (staleChannel.hasSubscribers) staleChannel.publish({ method: this.label, backend: registration.name, key });
    this.refreshInBackground(registration, self, args, key, tokens, 'stale');
    return isEntry(entry) ? entry.value : entry;
  }

  /**
   * Fail-safe: a refresh that throws leaves the current value in place and is reported. With
   * `lock`, only the process that takes the lock refreshes; the others keep serving meanwhile.
   */
  private refreshInBackground(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    tokens: readonly string[] | undefined,
    kind: 'stale' | 'early',
  ): void {
    const refreshing = registration.refreshing;
    if (refreshing.has(key)) return;
    refreshing.add(key);
    if (refreshChannel.hasSubscribers) refreshChannel.publish({ method: this.label, backend: registration.name, key, kind });
    const done = (): void => {
      refreshing.delete(key);
    };
    const refresh = async (): Promise<void> => {
      const start = performance.now();
      const value = await this.run(self, args);
      await this.store(self, args, key, value, performance.now() - start, tokens);
    };
    const backend = registration.backend;
    Promise.resolve()
      .then(() => (this.locks ? refreshUnderLock(backend, key, this.options.lockTtl ?? DEFAULT_LOCK_TTL, refresh) : refresh()))
      .then(done, (error) => {
        done();
        this.report(registration, key, 'refresh', error);
      });
  }

  protected override ttlOfWrite(): number | undefined {
    if (!this.derivesTtl) return this.options.ttl;
    const ttl = this.options.ttl ?? moduleConfig().defaultTtl;
    const jitter = this.options.jitter ?? 0;
    return jitter === 0 || ttl === 0 ? ttl : ttl * (1 + jitter * (2 * Math.random() - 1));
  }

  protected override physicalTtl(ttl: number | undefined): number | undefined {
    return ttl === undefined || ttl === 0 ? ttl : ttl + this.staleTtl;
  }

  protected override entryOf(value: unknown, ttl: number | undefined, computeMs: number): unknown {
    if (!this.enveloped) return value;
    return { [FRESH_UNTIL]: ttl ? Date.now() + ttl * 1000 : 0, value, computeMs } satisfies Entry;
  }

  /**
   * Which records lookups read. A method's generation is in play on a shared backend always
   * (another process may invalidate it); on a memory backend once it was invalidated.
   */
  protected override refreshed(registration: Registration): void {
    const { key, tags, namespace } = this.options;
    const records: string[] = [];
    if (key === undefined) {
      const generation = generationKey(namespace, this.label);
      const backend = registration.backend;
      if (!backend.synchronous || this.invalidatedHere || backend.has(generation)) records.push(generation);
    }
    if (Array.isArray(tags)) records.push(...tags.map(tagKey));
    this.records = records.length === 0 ? undefined : records;
    this.checks = this.records !== undefined || typeof tags === 'function';
  }

  /** Deletes the entry stored for `args` (`CacheModule.invalidate`); key functions get no `this`. */
  async invalidate(target: Function, args: unknown[]): Promise<boolean> {
    const registration = this.resolve(target.prototype ?? target);
    const key = this.keyFor(undefined, args);
    const existed = await registration.backend.delete(key);
    this.emit(state.events.evict, key);
    return existed;
  }

  /**
   * `CacheModule.expire(Class, 'method', ...args)`: the entry stored for `args` is marked stale
   * for the grace period, never past its own ttl where the backend tells it. A store racing this
   * rewrite may be overwritten by the older value marked stale; the next call refreshes it.
   */
  async expire(target: Function, args: unknown[]): Promise<boolean> {
    const backend = this.resolve(target.prototype ?? target).backend;
    const key = this.keyFor(undefined, args);
    const found = await withTtl(backend, key);
    if (found === MISS) return false;
    const grace = moduleConfig().expireGrace;
    const seconds = found.ttl === undefined || found.ttl === 0 ? grace : Math.min(found.ttl, grace);
    state.expiredEntries = true;
    await backend.set(key, expired(found.value, Date.now() + seconds * 1000), seconds);
    return true;
  }

  /**
   * `CacheModule.invalidate(Class, 'method')` (hard) or `CacheModule.expire(Class, 'method')`
   * (soft): every entry of the method is left behind in O(1) through its generation record;
   * nothing is scanned.
   */
  async invalidateAll(target: Function, soft = false): Promise<void> {
    const registration = this.resolve(target.prototype ?? target);
    if (this.options.key !== undefined) {
      const call = soft ? 'expire' : 'invalidate';
      throw new CacheConfigError(
        `CacheModule.${call}: ${this.label} has a custom \`key\`, so its entries are not the method's alone. ` +
          `${soft ? 'Expire' : 'Invalidate'} them by key (with arguments) or by tags.`,
      );
    }
    const key = generationKey(this.options.namespace, this.label);
    const inPlay = this.records?.includes(key) === true;
    this.invalidatedHere = true;
    this.refreshed(registration);
    if (soft) {
      await expireRecord(registration.backend, key, Date.now() + moduleConfig().expireGrace * 1000, !inPlay);
      return;
    }
    await registration.backend.set(key, newToken(), 0);
    this.emit(state.events.evict, key);
  }
}
