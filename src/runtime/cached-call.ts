import { MISS } from '../backends/backend.js';
import type { Registration } from '../module/state.js';
import { CallSite, isThenable } from './call-site.js';
import type { CachedOptions } from './options.js';

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

    const value = registration.backend.lookup(key);
    if (value !== MISS) {
      this.hit(registration, key);
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
      const value = await registration.backend.lookup(key);
      if (value !== MISS) {
        this.hit(registration, key);
        return value;
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
}
