import { Cacheable as TypeCacheable, type CacheClient } from '@type-cacheable/core';
import { createCache as createDedupeCache } from 'async-cache-dedupe';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { createCache } from 'cache-manager';
import fastMemoizeModule from 'fast-memoize';
import { Cacheable } from 'cacheable';
import { MemoryBackend } from 'hoard';
import { LRUCache } from 'lru-cache';
import memoize from 'memoizee';
import pMemoize from 'p-memoize';
import type { Options, Value } from '../workload.js';
import { cachedFunction, cachedMethod, registerBackend, TTL_SECONDS } from './hoard.js';
import { viaAsyncCacheDedupe, viaBentocache, viaCacheManager } from './peers.js';
import { jsonKey, memoizeOver, nothingToClose, type SubjectFactory } from './subject.js';

/** fast-memoize's typings declare an ES default export; loaded from ES modules, its CommonJS export is the function itself. */
const fastMemoize = fastMemoizeModule as unknown as typeof fastMemoizeModule.default;

/** Large enough that no subject evicts within a run: misses measure computing and storing, not LRU. */
const MAX_ENTRIES = 1_000_000;

/** What any hand-written memoization does at least: one `Map.get` under `JSON.stringify(args)`. */
export const floor: SubjectFactory = {
  name: 'floor: Map + JSON.stringify',
  role: 'floor',
  async create(computation) {
    return { lookup: memoizeOver(new Map(), computation), close: nothingToClose };
  },
};

/**
 * A MemoryBackend registered for one subject. Closing it drops its entries: a registration
 * outlives the subject, and otherwise every round's cache would stay reachable to the end of
 * the run, making later rounds' garbage collections walk them (the peers' caches are garbage
 * once their round ends).
 */
function memoryBackend(): { name: string; close: () => Promise<void> } {
  const backend = new MemoryBackend({ maxEntries: MAX_ENTRIES });
  return { name: registerBackend(backend), close: async () => backend.close() };
}

export const hoardMethod: SubjectFactory = {
  name: 'hoard @Cached',
  role: 'hoard',
  async create(computation) {
    const backend = memoryBackend();
    return { lookup: cachedMethod(backend.name, computation), close: backend.close };
  },
};

/** The same with a key function written for the signature: what a miss costs without the canonical encoding. */
const hoardMethodKeyed: SubjectFactory = {
  name: 'hoard @Cached, key function',
  role: 'hoard',
  async create(computation) {
    const backend = memoryBackend();
    return { lookup: cachedMethod(backend.name, computation, (id, opts) => `${id}:${opts.region}`), close: backend.close };
  },
};

const hoardFunction: SubjectFactory = {
  name: 'hoard cached(fn)',
  role: 'hoard',
  async create(computation) {
    const backend = memoryBackend();
    return { lookup: cachedFunction(backend.name, computation), close: backend.close };
  },
};

export const memoizee: SubjectFactory = {
  name: 'memoizee',
  role: 'peer',
  async create(computation) {
    // Its default keys objects by identity, which a fresh `opts` per call never matches.
    const lookup = memoize(computation.run, {
      promise: true,
      normalizer: (args) => jsonKey(args[0], args[1]),
      maxAge: TTL_SECONDS * 1000,
    });
    // With maxAge it sets a timer per entry, which keeps the entry alive until it fires: clear them.
    return { lookup, close: async () => lookup.clear() };
  },
};

const pMemoizeSubject: SubjectFactory = {
  name: 'p-memoize',
  role: 'peer',
  async create(computation) {
    // Its default key is the first argument alone, which would mix up regions.
    const lookup = pMemoize(computation.run, { cacheKey: ([id, opts]) => jsonKey(id, opts) });
    return { lookup, close: nothingToClose };
  },
};

/** fast-memoize with its defaults: an object store keyed by `JSON.stringify` of all the arguments. */
export const fastMemoizeSubject: SubjectFactory = {
  name: 'fast-memoize',
  role: 'peer',
  async create(computation) {
    return { lookup: fastMemoize(computation.run), close: nothingToClose };
  },
};

/** async-cache-dedupe over its memory storage, sized so that nothing is evicted. */
const asyncCacheDedupe: SubjectFactory = {
  name: 'async-cache-dedupe',
  role: 'peer',
  async create(computation) {
    const cache = createDedupeCache({ ttl: TTL_SECONDS, storage: { type: 'memory', options: { size: MAX_ENTRIES } } });
    return viaAsyncCacheDedupe(cache, computation, nothingToClose);
  },
};

const cacheManager: SubjectFactory = {
  name: 'cache-manager',
  role: 'peer',
  async create(computation) {
    return viaCacheManager(createCache({ ttl: TTL_SECONDS * 1000 }), computation);
  },
};

/** bentocache's memory tier holds `maxItems` (its lru-cache preallocates for that many). */
export function bentocacheWith(maxItems: number): SubjectFactory {
  return {
    name: 'bentocache',
    role: 'peer',
    async create(computation) {
      const bento = new BentoCache({
        default: 'memory',
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems })) },
      });
      return viaBentocache(bento, computation);
    },
  };
}

/** The floor's memoization over lru-cache instead of a Map, holding `max` entries (preallocated). */
export function lruCacheWith(max: number): SubjectFactory {
  return {
    name: 'lru-cache',
    role: 'peer',
    async create(computation) {
      return {
        lookup: memoizeOver(new LRUCache<string, Value>({ max, ttl: TTL_SECONDS * 1000 }), computation),
        close: nothingToClose,
      };
    },
  };
}

const cacheable: SubjectFactory = {
  name: 'cacheable',
  role: 'peer',
  async create(computation) {
    const cache = new Cacheable({ ttl: TTL_SECONDS * 1000 });
    return { lookup: cache.wrap(computation.run), close: () => cache.disconnect() };
  },
};

/** @type-cacheable ships no in-process client; this is the whole of what its adapters do for a Map. */
class MapClient implements CacheClient {
  private readonly map = new Map<string, unknown>();
  async get(key: string): Promise<unknown> {
    return this.map.get(key);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, value);
  }
  async del(keys: string | string[]): Promise<void> {
    for (const key of ([] as string[]).concat(keys)) this.map.delete(key);
  }
  async keys(): Promise<string[]> {
    return [...this.map.keys()];
  }
  async delHash(): Promise<void> {}
  getClientTTL(): number {
    return 0;
  }
}

const typeCacheable: SubjectFactory = {
  name: '@type-cacheable',
  role: 'peer',
  async create(computation) {
    const client = new MapClient();
    class Reports {
      @TypeCacheable({ client, ttlSeconds: TTL_SECONDS })
      async lookup(id: number, opts: Options): Promise<Value> {
        return computation.result(id, opts);
      }
    }
    const reports = new Reports();
    return { lookup: (id, opts) => reports.lookup(id, opts), close: nothingToClose };
  },
};

export const memorySubjects: SubjectFactory[] = [
  floor,
  hoardMethod,
  hoardFunction,
  hoardMethodKeyed,
  memoizee,
  pMemoizeSubject,
  fastMemoizeSubject,
  asyncCacheDedupe,
  cacheManager,
  bentocacheWith(MAX_ENTRIES),
  cacheable,
  typeCacheable,
];
