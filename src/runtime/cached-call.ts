import { MISS } from '../backends/backend.js';
import { moduleConfig } from '../module/config.js';
import type { Registration } from '../module/state.js';
import { CallSite, isThenable } from './call-site.js';
import type { CachedOptions } from './options.js';
import { recordTag } from './tags.js';

/** With `staleTtl`, the entry carries the moment its value stops being fresh (ms, 0 = never). */
const FRESH_UNTIL = '__hoardFreshUntil';
interface StaleEntry {
  [FRESH_UNTIL]: number;
  value: unknown;
}

function isStaleEntry(entry: unknown): entry is StaleEntry {
  return typeof (entry as StaleEntry | null)?.[FRESH_UNTIL] === 'number';
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
  /** Learned from results: a hit on a memory backend is returned as a Promise once results were. */
  private returnsPromise = this.callee.async;

  declare protected readonly options: CachedOptions;

  /** Seconds past `ttl` a value may be served stale; 0 keeps entries bare and the hit path short. */
  private readonly staleTtl: number;

  constructor(...args: ConstructorParameters<typeof CallSite>) {
    super(...args);
    this.staleTtl = this.options.staleTtl ?? 0;
  }

  invoke(self: unknown, args: unknown[]): unknown {
    const condition = this.options.condition;
    if (condition !== undefined && !condition.apply(self, args)) return this.callee.fn.apply(self, args);
    let registration: Registration;
    let key: string;
    try {
      registration = this.resolve(self);
      key = this.keyFor(self, args);
    } catch (error) {
      return this.fail(error);
    }
    if (!registration.backend.synchronous) return this.viaAsyncBackend(registration, self, args, key);

    const entry = registration.backend.lookup(key);
    if (entry !== MISS) {
      this.hit(registration, key);
      const value = this.staleTtl === 0 ? entry : this.served(registration, self, args, key, entry);
      return this.returnsPromise ? Promise.resolve(value) : value;
    }
    return registration.inflight.get(key) ?? this.compute(registration, self, args, key);
  }

  private hit(registration: Registration, key: string): void {
    registration.counter.hits++;
    this.counter.hits++;
    this.emit('hit', key);
  }

  private miss(registration: Registration, key: string): void {
    registration.counter.misses++;
    this.counter.misses++;
    this.emit('miss', key);
  }

  /** Miss on a synchronous backend: a synchronous result is stored at once, a promise once it settles. */
  private compute(registration: Registration, self: unknown, args: unknown[], key: string): unknown {
    this.miss(registration, key);
    const result = this.callee.fn.apply(self, args);
    if (!isThenable(result)) {
      this.store(self, args, key, result);
      return result;
    }
    this.returnsPromise = true;
    const inflight = registration.inflight;
    const settled = Promise.resolve(result).then(
      (value) => {
        inflight.delete(key);
        this.store(self, args, key, value);
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

  private viaAsyncBackend(registration: Registration, self: unknown, args: unknown[], key: string): Promise<unknown> {
    const inflight = registration.inflight;
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    const call = this.lookupOrCompute(registration, self, args, key);
    inflight.set(key, call);
    const forget = (): void => {
      inflight.delete(key);
    };
    call.then(forget, forget);
    return call;
  }

  private async lookupOrCompute(registration: Registration, self: unknown, args: unknown[], key: string): Promise<unknown> {
    let reachable = true;
    try {
      const entry = await registration.backend.lookup(key);
      if (entry !== MISS) {
        this.hit(registration, key);
        return this.staleTtl === 0 ? entry : this.served(registration, self, args, key, entry);
      }
      this.miss(registration, key);
    } catch (error) {
      // Fail-open: the caller gets a computed value; a store would only wait on the same fault.
      reachable = false;
      this.report(registration, key, 'get', error);
    }
    const value = await this.callee.fn.apply(self, args);
    if (reachable) await this.store(self, args, key, value);
    return value;
  }

  /** The value of a `staleTtl` entry; past its freshness, one refresh starts in the background. */
  private served(registration: Registration, self: unknown, args: unknown[], key: string, entry: unknown): unknown {
    if (!isStaleEntry(entry)) return entry;
    const freshUntil = entry[FRESH_UNTIL];
    if (freshUntil !== 0 && freshUntil <= Date.now()) this.refreshInBackground(registration, self, args, key);
    return entry.value;
  }

  /** Fail-safe: a refresh that throws leaves the stale value in place and is reported. */
  private refreshInBackground(registration: Registration, self: unknown, args: unknown[], key: string): void {
    const refreshing = registration.refreshing;
    if (refreshing.has(key)) return;
    refreshing.add(key);
    const done = (): void => {
      refreshing.delete(key);
    };
    Promise.resolve()
      .then(() => this.callee.fn.apply(self, args))
      .then((value) => this.store(self, args, key, value))
      .then(done, (error) => {
        done();
        this.report(registration, key, 'refresh', error);
      });
  }

  /** The logical ttl: with staleTtl or tags the physical one is derived from it, so it must be known here. */
  private ttl(): number {
    return this.options.ttl ?? moduleConfig().defaultTtl;
  }

  protected override entryOf(value: unknown): unknown {
    if (this.staleTtl === 0) return value;
    const ttl = this.ttl();
    return { [FRESH_UNTIL]: ttl === 0 ? 0 : Date.now() + ttl * 1000, value } satisfies StaleEntry;
  }

  protected override storedTtl(): number | undefined {
    if (this.staleTtl === 0 && this.options.tags === undefined) return this.options.ttl;
    const ttl = this.ttl();
    return ttl === 0 ? 0 : ttl + this.staleTtl;
  }

  /** Records the entry under its tags; a failure is reported and leaves the value cached. */
  protected override stored(self: unknown, args: unknown[], key: string, registration: Registration): void | Promise<void> {
    super.stored(self, args, key, registration);
    const option = this.options.tags;
    if (option === undefined) return;
    const report = (error: unknown): void => this.report(registration, key, 'tag', error);
    try {
      const tags = typeof option === 'function' ? option.apply(self, args) : option;
      const ttl = this.storedTtl()!;
      const recorded = tags.map((tag) => recordTag(registration.backend, key, tag, ttl));
      if (recorded.some(isThenable)) return Promise.all(recorded).then(() => undefined, report);
    } catch (error) {
      report(error);
    }
  }
}
