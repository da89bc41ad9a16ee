import { MISS } from '../backends/backend.js';
import { CacheConfigError, CacheSerializationError } from '../errors.js';
import { callChannel, computeChannel, staleChannel, traced, type ComputeMessage } from '../channels.js';
import { moduleConfig } from '../module/config.js';
import { state, type Registration } from '../module/state.js';
import { isThenable } from '../maybe-promise.js';
import { CallSite } from './call-site.js';
import { Freshness, valueOf, type Due } from './freshness.js';
import { computeUnderLock, DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_TTL } from './lock.js';
import { isObservable, observableClassOf, singleValue, toObservable, type ObservableLike } from './observable.js';
import type { CachedOptions } from './options.js';
import {
  expireEntry,
  expireRecord,
  isExpired,
  isStamped,
  newToken,
  peekChecked,
  readChecked,
  readPlain,
  type Checked,
} from './records.js';
import { refreshInBackground } from './refresh.js';
import { SiteRecords } from './site-records.js';

/**
 * Whether `site` is a `@Cached` one. Asked by shape, not with `instanceof`: the site may come
 * from the other build of hoard loaded in this process, whose CachedCall is another class.
 */
export function isCachedCall(site: CallSite | undefined): site is CachedCall {
  return typeof (site as Partial<CachedCall> | undefined)?.invalidateAll === 'function';
}

/**
 * The one call path of `@Cached` and `cached(fn)`: lookup → single flight → compute → store.
 * The policies it composes live beside it: freshness (`staleTtl`, `earlyRefresh`:
 * runtime/freshness.ts), records for tags and generations (runtime/site-records.ts,
 * runtime/records.ts), background refreshes (runtime/refresh.ts) and the lock (runtime/lock.ts).
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
  private readonly freshness: Freshness;
  /** The ttl must be known here (not left to the backend's default) to derive what is written. */
  private readonly derivesTtl: boolean;
  private readonly records: SiteRecords;
  /** Copies of what the hit path asks on every call, kept on the call site itself. */
  private readonly enveloped: boolean;
  private checks = false;

  constructor(...args: ConstructorParameters<typeof CallSite>) {
    super(...args);
    this.returnsPromise = this.callee.async;
    this.freshness = new Freshness(this.options);
    this.enveloped = this.freshness.enveloped;
    this.derivesTtl = this.enveloped || (this.options.jitter ?? 0) > 0;
    this.records = new SiteRecords(this.options);
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

  /** A call published on `tracing:hoard:call:*` (see channels.ts). */
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
      if (this.checks) records = this.records.forCall(self, args, this.label);
    } catch (error) {
      return this.fail(error);
    }
    let found: Checked | undefined;
    let entry: unknown;
    if (records !== undefined) {
      found = readChecked(registration.backend, key, records) as Checked;
      entry = found.entry;
    } else {
      entry = registration.backend.lookup(key);
      // A memory backend is this process's alone: until an entry was expired here it holds no mark.
      if (state.expiredEntries && isExpired(entry)) {
        found = readPlain(entry, this.options.key !== undefined);
        entry = found.entry;
      } else if (this.options.key !== undefined && isStamped(entry)) {
        entry = MISS;
      }
    }
    if (entry !== MISS) {
      // Learnt on a hit only: arguments seen once (a miss) would fill the trie for nothing.
      if (!known) this.learnKey(args, key);
      const value = this.served(registration, self, args, key, entry, found);
      return this.returnsPromise ? Promise.resolve(value) : value;
    }
    return registration.inflight.get(key) ?? this.compute(registration, self, args, key, found?.tokens);
  }

  /** A hit: the value, and a refresh in the background when the entry is stale or due early. */
  private served(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    entry: unknown,
    found: Checked | undefined,
  ): unknown {
    registration.counter.hits++;
    this.counter.hits++;
    this.emit(state.events.hit, key);
    if (found?.stale === true) {
      this.refreshEntry(registration, self, args, key, found.tokens, 'stale');
      return valueOf(entry);
    }
    if (!this.enveloped) return entry;
    const due = this.freshness.due(entry);
    if (due !== undefined) this.refreshEntry(registration, self, args, key, found?.tokens, due);
    return valueOf(entry);
  }

  private miss(registration: Registration, key: string): void {
    registration.counter.misses++;
    this.counter.misses++;
    this.emit(state.events.miss, key);
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
    const start = this.freshness.clock();
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
    void this.store(self, args, key, result, this.freshness.clock() - start, tokens);
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
        void this.store(self, args, key, value, this.freshness.clock() - start, tokens);
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

  /** What a lookup of `key` finds on an asynchronous backend, checked against `records` when there are some. */
  private lookup(registration: Registration, key: string, records: readonly string[] | undefined): Promise<Checked> {
    const backend = registration.backend;
    if (records !== undefined) return Promise.resolve(readChecked(backend, key, records));
    return Promise.resolve(backend.lookup(key)).then((found) => readPlain(found, this.options.key !== undefined));
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
      if (this.checks) records = this.records.forCall(self, args, this.label);
    } catch (error) {
      return Promise.reject(error);
    }
    const peek = registration.peek;
    if (peek !== undefined) {
      // What this process holds (a tiered backend's L1 copies), checked against the records'
      // copies it holds: a current entry is served without a lookup's promises; anything else
      // (not held, stale, a record not held) takes the lookup below.
      const held = records === undefined ? readPlain(peek(key), this.options.key !== undefined) : peekChecked(peek, key, records);
      if (held !== undefined && held.entry !== MISS && held.stale !== true)
        return Promise.resolve(this.served(registration, self, args, key, held.entry, held));
    }
    const inflight = registration.inflight;
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    // One reaction per call, registered in `inflight` until it settles (single flight). A hit
    // unregisters inline; the slower paths do it as they settle. Each runs after the
    // registration, since promise reactions never run synchronously.
    let lookup: Promise<Checked>;
    try {
      lookup = this.lookup(registration, key, records);
    } catch (error) {
      lookup = Promise.reject(error);
    }
    const call = lookup.then(
      (found) => {
        if (found.unreadable !== undefined) this.report(registration, key, 'get', found.unreadable);
        if (found.entry === MISS) return this.afterMiss(registration, self, args, key, records, found.tokens);
        inflight.delete(key);
        return this.served(registration, self, args, key, found.entry, found);
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
    return this.unregisterAfter(registration, key, () =>
      computeUnderLock({
        backend: registration.backend,
        key,
        lockTimeout: this.options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT,
        lockTtl: this.options.lockTtl ?? DEFAULT_LOCK_TTL,
        compute,
        poll: async () => {
          const found = await this.lookup(registration, key, records);
          return found.entry === MISS ? undefined : { value: valueOf(found.entry) };
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
    const start = this.freshness.clock();
    const value = await this.run(self, args);
    await this.store(self, args, key, value, this.freshness.clock() - start, tokens);
    return value;
  }

  /** The method body, published on `tracing:hoard:compute:*` when a tracer listens; its result as cached. */
  private run(self: unknown, args: unknown[]): unknown {
    if (!computeChannel.start.hasSubscribers) return this.asCached(this.callee.fn.apply(self, args));
    const message: ComputeMessage = { method: this.label, backend: this.registration.name };
    return this.asCached(traced(computeChannel, message, () => this.callee.fn.apply(self, args)));
  }

  /** A stale entry was served (past its ttl within `staleTtl`, or expired softly), or one is due early: one refresh replaces it. */
  private refreshEntry(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    tokens: readonly string[] | undefined,
    kind: Due,
  ): void {
    if (kind === 'stale' && staleChannel.hasSubscribers)
      staleChannel.publish({ method: this.label, backend: registration.name, key });
    refreshInBackground({
      registration,
      key,
      method: this.label,
      kind,
      lockTtl: this.locks ? (this.options.lockTtl ?? DEFAULT_LOCK_TTL) : undefined,
      run: async () => {
        let current = tokens;
        if (kind === 'stale') {
          // A read that began before another refresh of this key stored its value may end after it,
          // and find the entry stale still: read again, and compute only if it still is.
          const found = await this.lookup(
            registration,
            key,
            this.checks ? this.records.forCall(self, args, this.label) : undefined,
          );
          if (found.entry !== MISS && found.stale !== true && this.freshness.due(found.entry) !== 'stale') return;
          current = found.tokens;
        }
        const start = performance.now();
        const value = await this.run(self, args);
        await this.store(self, args, key, value, performance.now() - start, current);
      },
      report: (error) => this.report(registration, key, 'refresh', error),
    });
  }

  protected override ttlOfWrite(): number | undefined {
    if (!this.derivesTtl) return this.options.ttl;
    const ttl = this.options.ttl ?? moduleConfig().defaultTtl;
    const jitter = this.options.jitter ?? 0;
    return jitter === 0 || ttl === 0 ? ttl : ttl * (1 + jitter * (2 * Math.random() - 1));
  }

  protected override physicalTtl(ttl: number | undefined): number | undefined {
    return this.freshness.physicalTtl(ttl);
  }

  protected override entryOf(value: unknown, ttl: number | undefined, computeMs: number): unknown {
    return this.freshness.wrap(value, ttl, computeMs);
  }

  protected override refreshed(registration: Registration): void {
    this.records.refresh(registration.backend, this.label);
    this.checks = this.records.checks;
  }

  /** Deletes the entry stored for `args` (`CacheModule.invalidate`); key functions get no `this`. */
  async invalidate(target: Function, args: unknown[]): Promise<boolean> {
    const registration = this.resolve(target.prototype ?? target);
    const key = this.keyFor(undefined, args);
    const existed = await registration.backend.delete(key);
    this.emit(state.events.evict, key);
    return existed;
  }

  /** `CacheModule.expire(Class, 'method', ...args)`: the entry stored for `args` is stale for `expireGrace`. */
  async expire(target: Function, args: unknown[]): Promise<boolean> {
    const backend = this.resolve(target.prototype ?? target).backend;
    const key = this.keyFor(undefined, args);
    state.expiredEntries = true;
    return expireEntry(backend, key, moduleConfig().expireGrace);
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
    const backend = registration.backend;
    const generation = this.records.generation(this.label);
    const stamped = this.records.readsGeneration(this.label);
    this.records.invalidated(backend, this.label);
    this.checks = this.records.checks;
    if (soft) {
      await expireRecord(backend, generation, Date.now() + moduleConfig().expireGrace * 1000, !stamped);
      return;
    }
    await backend.set(generation, newToken(), 0);
    this.emit(state.events.evict, generation);
  }
}
