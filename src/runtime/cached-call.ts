import { MISS } from '../backends/backend.js';
import { CacheConfigError, CacheSerializationError } from '../errors.js';
import { callChannel, computeChannel, refreshChannel, staleChannel, traced, type ComputeMessage } from '../module/channels.js';
import { moduleConfig } from '../module/config.js';
import { state, type Registration } from '../module/state.js';
import { CallSite, isThenable } from './call-site.js';
import { computeUnderLock, DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_TTL } from './lock.js';
import { isObservable, observableClassOf, singleValue, toObservable, type ObservableLike } from './observable.js';
import type { CachedOptions } from './options.js';
import { recordTag } from './tags.js';

/**
 * Whether `site` is a `@Cached` one. Asked by shape, not with `instanceof`: the site may come
 * from the other build of hoard loaded in this process, whose CachedCall is another class.
 */
export function isCachedCall(site: CallSite | undefined): site is CachedCall {
  return typeof (site as Partial<CachedCall> | undefined)?.invalidateAll === 'function';
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

/** How often a process re-reads a method's generation from a shared backend (ms). */
const GENERATION_RECHECK_MS = 1000;

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

  /** Whether `generation` was read from a shared backend (see awaitGeneration). */
  private generationKnown = false;
  private generationCheckAt = 0;
  private generationRead: Promise<boolean> | undefined;

  constructor(...args: ConstructorParameters<typeof CallSite>) {
    super(...args);
    const { staleTtl = 0, earlyRefresh = false, tags, jitter = 0 } = this.options;
    this.returnsPromise = this.callee.async;
    this.staleTtl = staleTtl;
    this.beta = earlyRefresh === true ? 1 : earlyRefresh === false ? 0 : earlyRefresh;
    this.enveloped = staleTtl > 0 || this.beta > 0;
    this.derivesTtl = this.enveloped || tags !== undefined || jitter > 0;
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
    try {
      registration = this.resolve(self);
      if (!registration.backend.synchronous) return this.viaAsyncBackend(registration, self, args);
      key = this.knownKey(args);
      if (key === undefined) {
        key = this.keyFor(self, args);
        known = false;
      }
    } catch (error) {
      return this.fail(error);
    }
    const entry = registration.backend.lookup(key);
    if (entry !== MISS) {
      // Learnt on a hit only: arguments seen once (a miss) would fill the trie for nothing.
      if (!known) this.learnKey(args, key);
      this.hit(registration, key);
      const value = this.enveloped ? this.served(registration, self, args, key, entry) : entry;
      return this.returnsPromise ? Promise.resolve(value) : value;
    }
    return registration.inflight.get(key) ?? this.compute(registration, self, args, key);
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

  /** Miss on a synchronous backend: a synchronous result is stored at once, a promise once it settles. */
  private compute(registration: Registration, self: unknown, args: unknown[], key: string): unknown {
    this.miss(registration, key);
    const start = this.clock();
    const result = this.run(self, args);
    if (isThenable(result)) return this.storeWhenSettled(registration, self, args, key, result, start);
    const Observable = isObservable(result) ? observableClassOf(Object.getPrototypeOf(result)) : undefined;
    if (Observable !== undefined) {
      // Learnt from this first result: from now on calls return Observables of the cached value.
      this.callee.observable = Observable;
      return toObservable(Observable, () =>
        this.storeWhenSettled(registration, self, args, key, singleValue(result as ObservableLike, this.label), start),
      );
    }
    this.store(self, args, key, result, this.clock() - start);
    return result;
  }

  /** Registers a computation's promise for single flight, and stores its value once it settles. */
  private storeWhenSettled(
    registration: Registration,
    self: unknown,
    args: unknown[],
    key: string,
    result: PromiseLike<unknown>,
    start: number,
  ): Promise<unknown> {
    this.returnsPromise = true;
    const inflight = registration.inflight;
    const settled = Promise.resolve(result).then(
      (value) => {
        inflight.delete(key);
        this.store(self, args, key, value, this.clock() - start);
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
    const generation = this.awaitGeneration(registration);
    if (generation !== undefined) {
      // A backend that could not answer for the generation will not answer the lookup either.
      return generation.then((answered) => (answered ? this.viaAsyncBackend(registration, self, args) : this.run(self, args)));
    }
    let key = this.knownKey(args);
    if (key === undefined) {
      try {
        key = this.keyFor(self, args);
      } catch (error) {
        return Promise.reject(error);
      }
      // Learnt now, while the arguments are as they were called: a caller may change them later.
      this.learnKey(args, key);
    }
    const inflight = registration.inflight;
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    // One reaction per call, registered in `inflight` until it settles (single flight). A hit
    // unregisters inline; the slower paths do it as they settle. Each runs after the
    // registration, since promise reactions never run synchronously.
    let lookup: unknown;
    try {
      lookup = registration.backend.lookup(key);
    } catch (error) {
      lookup = Promise.reject(error);
    }
    const call = Promise.resolve(lookup).then(
      (entry) => {
        if (entry === MISS) return this.afterMiss(registration, self, args, key);
        inflight.delete(key);
        this.hit(registration, key);
        return this.enveloped ? this.served(registration, self, args, key, entry) : entry;
      },
      (error) => {
        this.report(registration, key, 'get', error);
        // Fail-open: the caller gets a computed value; a store (or a lock) would only wait on the
        // same fault. An entry that cannot be read is a miss instead, and the new value replaces it.
        if (error instanceof CacheSerializationError) return this.afterMiss(registration, self, args, key);
        return this.unregisterAfter(registration, key, () => this.run(self, args));
      },
    );
    inflight.set(key, call);
    return call;
  }

  private afterMiss(registration: Registration, self: unknown, args: unknown[], key: string): Promise<unknown> {
    this.miss(registration, key);
    if (!(this.options.lock ?? moduleConfig().lock)) return this.unregisterAfter(registration, key, () => this.computeAndStore(self, args, key));
    return this.unregisterAfter(registration, key, () =>
      computeUnderLock({
        backend: registration.backend,
        key,
        lockTimeout: this.options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT,
        lockTtl: this.options.lockTtl ?? DEFAULT_LOCK_TTL,
        compute: () => this.computeAndStore(self, args, key),
        poll: async () => {
          const entry = await registration.backend.lookup(key);
          if (entry === MISS) return undefined;
          return { value: this.enveloped ? this.served(registration, self, args, key, entry) : entry };
        },
        report: (operation, error) => this.report(registration, key, operation, error),
      }),
    );
  }

  /** Runs `work` and unregisters the call from `inflight` once it settles, whichever way. */
  private async unregisterAfter(registration: Registration, key: string, work: () => unknown): Promise<unknown> {
    try {
      return await work();
    } finally {
      registration.inflight.delete(key);
    }
  }

  private async computeAndStore(self: unknown, args: unknown[], key: string): Promise<unknown> {
    const start = this.clock();
    const value = await this.run(self, args);
    await this.store(self, args, key, value, this.clock() - start);
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
  private served(registration: Registration, self: unknown, args: unknown[], key: string, entry: unknown): unknown {
    if (!isEntry(entry)) return entry;
    const freshUntil = entry[FRESH_UNTIL];
    if (freshUntil !== 0) {
      const now = Date.now();
      if (freshUntil <= now) {
        if (staleChannel.hasSubscribers) staleChannel.publish({ method: this.label, backend: registration.name, key });
        this.refreshInBackground(registration, self, args, key, 'stale');
      } else if (this.beta !== 0 && now - entry.computeMs * this.beta * Math.log(Math.random()) >= freshUntil) {
        this.refreshInBackground(registration, self, args, key, 'early');
      }
    }
    return entry.value;
  }

  /** Fail-safe: a refresh that throws leaves the current value in place and is reported. */
  private refreshInBackground(registration: Registration, self: unknown, args: unknown[], key: string, kind: 'stale' | 'early'): void {
    const refreshing = registration.refreshing;
    if (refreshing.has(key)) return;
    refreshing.add(key);
    if (refreshChannel.hasSubscribers) refreshChannel.publish({ method: this.label, backend: registration.name, key, kind });
    const done = (): void => {
      refreshing.delete(key);
    };
    const start = performance.now();
    Promise.resolve()
      .then(() => this.run(self, args))
      .then((value) => this.store(self, args, key, value, performance.now() - start))
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

  /** Records the entry under its tags; a failure is reported and leaves the value cached. */
  protected override stored(
    self: unknown,
    args: unknown[],
    key: string,
    registration: Registration,
    ttl: number | undefined,
  ): void | Promise<void> {
    super.stored(self, args, key, registration, ttl);
    const option = this.options.tags;
    if (option === undefined) return;
    const report = (error: unknown): void => this.report(registration, key, 'tag', error);
    try {
      const tags = typeof option === 'function' ? option.apply(self, args) : option;
      const physical = this.physicalTtl(ttl) ?? 0;
      const recorded = tags.map((tag) => recordTag(registration.backend, key, tag, physical));
      if (recorded.some(isThenable)) return Promise.all(recorded).then(() => undefined, report);
    } catch (error) {
      report(error);
    }
  }

  private generationKey(): string {
    return `${this.customBase}hoard:gen:${this.label}`;
  }

  /** A memory backend's generation is read here, once; a shared one's by awaitGeneration. */
  protected override refreshed(registration: Registration): void {
    if (this.options.key !== undefined) return;
    const backend = registration.backend;
    if (!backend.synchronous) {
      this.generationKnown = false;
      this.generationCheckAt = 0;
      return;
    }
    const stored = backend.get(this.generationKey());
    // An LRU may have evicted the counter; this process's own count is still right.
    this.generation = Math.max(this.generation, typeof stored === 'number' ? stored : 0);
  }

  /**
   * On a shared backend another process may bump the generation, so it is re-read at most once
   * a second. The first call waits for it (its key depends on it); later ones do not.
   */
  private awaitGeneration(registration: Registration): Promise<boolean> | undefined {
    if (this.options.key !== undefined) return undefined;
    const now = Date.now();
    if (now >= this.generationCheckAt && this.generationRead === undefined) {
      this.generationCheckAt = now + GENERATION_RECHECK_MS;
      const read = this.readGeneration(registration);
      this.generationRead = read;
      read.then(() => {
        this.generationRead = undefined;
      });
    }
    return this.generationKnown ? undefined : this.generationRead;
  }

  /** True when the backend answered. */
  private async readGeneration(registration: Registration): Promise<boolean> {
    const key = this.generationKey();
    try {
      const stored = await registration.backend.get(key);
      this.setGeneration(typeof stored === 'number' ? stored : 0);
      this.generationKnown = true;
      return true;
    } catch (error) {
      this.report(registration, key, 'get', error);
      return false;
    }
  }

  /** Deletes the entry stored for `args` (`CacheModule.invalidate`); key functions get no `this`. */
  async invalidate(target: Function, args: unknown[]): Promise<boolean> {
    const registration = this.resolve(target.prototype ?? target);
    if (!registration.backend.synchronous) await this.awaitGeneration(registration);
    const key = this.keyFor(undefined, args);
    const existed = await registration.backend.delete(key);
    this.emit(state.events.evict, key);
    return existed;
  }

  /**
   * `CacheModule.invalidate(Class, 'method')`: every entry of the method is left behind in O(1)
   * by bumping its generation, which is part of its keys; nothing is scanned.
   */
  async invalidateAll(target: Function): Promise<void> {
    const registration = this.resolve(target.prototype ?? target);
    if (this.options.key !== undefined) {
      throw new CacheConfigError(
        `CacheModule.invalidate: ${this.label} has a custom \`key\`, so its entries are not the method's alone. ` +
          'Invalidate them by key (@CacheEvict, invalidate with arguments) or by tags.',
      );
    }
    const backend = registration.backend;
    const key = this.generationKey();
    await backend.add(key, 0, 0);
    this.setGeneration(await backend.increment(key));
    this.generationKnown = true;
    this.emit(state.events.evict, key);
  }
}
