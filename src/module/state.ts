import type { CacheBackend } from '../backends/backend.js';
import { Inflight } from './inflight.js';
import { CacheEvents } from './events.js';
import { processWide } from './process-wide.js';
import { Counter, CounterMap } from './stats.js';

/** A registered backend with what the call path keeps beside it. */
export interface Registration {
  readonly name: string;
  readonly backend: CacheBackend;
  /** Computations under way, by key: concurrent callers of one key share one (single flight). */
  readonly inflight: Inflight<Promise<unknown>>;
  /** Keys whose stale value is being refreshed in the background (`staleTtl`): one refresh each. */
  readonly refreshing: Set<string>;
  readonly counter: Counter;
  /** The backend's `peek`, bound, when it has one (see {@link CacheBackend.peek}). */
  readonly peek: ((key: string) => unknown) | undefined;
  /** Stops reporting the backend's own faults (see {@link CacheBackend.onFault}) under this name. */
  readonly detach: () => void;
}

const nothingToDetach = (): void => undefined;

/**
 * Everything CacheModule holds. `version` changes whenever a registration or the configuration
 * does, so call sites can cache what they resolved and re-check with one integer comparison.
 */
class ModuleState {
  version = 0;
  readonly backends = new Map<string, Registration>();
  events = new CacheEvents();
  backendCounters = new CounterMap();
  methodCounters = new CounterMap();
  /**
   * Set once `CacheModule.expire` marked an entry stale in this process: until then a memory
   * backend (this process's alone) holds none, and its hits need not look for the mark.
   */
  expiredEntries = false;

  /** Registers `backend` as `name`; returns the backend registered there before, if any. */
  register(name: string, backend: CacheBackend): CacheBackend | undefined {
    const previous = this.backends.get(name);
    previous?.detach();
    const counter = this.backendCounters.for(name);
    // A fault of the connection (a refused password, a bus that cannot subscribe) belongs to no
    // call, so no call path would report it: it is an `error` event with no key.
    const detach =
      backend.onFault?.((error, operation) => {
        counter.errors++;
        const topic = this.events.error;
        if (topic.wanted) topic.emit({ backend: name, key: '', operation, error });
      }) ?? nothingToDetach;
    this.backends.set(name, {
      name,
      backend,
      inflight: new Inflight(),
      refreshing: new Set(),
      counter,
      detach,
      peek: backend.peek?.bind(backend),
    });
    this.version++;
    return previous?.backend;
  }

  /** Removes `name` when it is registered (to `backend`, when given); true when it did. */
  unregister(name: string, backend?: CacheBackend): boolean {
    const registration = this.backends.get(name);
    if (registration === undefined || (backend !== undefined && registration.backend !== backend)) return false;
    registration.detach();
    this.backends.delete(name);
    this.version++;
    return true;
  }

  reset(): void {
    for (const registration of this.backends.values()) registration.detach();
    this.backends.clear();
    this.events = new CacheEvents();
    this.backendCounters = new CounterMap();
    this.methodCounters = new CounterMap();
    this.expiredEntries = false;
    this.version++;
  }
}

/** One state per process, even when two copies of the package are loaded. */
export const state: ModuleState = processWide('state', () => new ModuleState());

export const DEFAULT_BACKEND = 'default';
