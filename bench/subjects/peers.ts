import type { createCache as createDedupeCache } from 'async-cache-dedupe';
import type { BentoCache, BentoStore } from 'bentocache';
import type { Cache } from 'cache-manager';
import type { Computation, Options } from '../workload.js';
import { TTL_SECONDS } from './hoard.js';
import { jsonKey, type Subject } from './subject.js';

type Built = Pick<Subject, 'lookup' | 'close'>;

/** bentocache, however its stores are set up: `getOrSet` under `JSON.stringify([id, opts])`. */
export function viaBentocache(bento: BentoCache<Record<string, BentoStore>>, computation: Computation): Built {
  return {
    lookup: (id: number, opts: Options) =>
      bento.getOrSet({ key: jsonKey(id, opts), factory: () => computation.run(id, opts), ttl: TTL_SECONDS * 1000 }),
    close: () => bento.disconnectAll(),
  };
}

/** cache-manager, however its stores are set up: `wrap` under `JSON.stringify([id, opts])`. */
export function viaCacheManager(cache: Cache, computation: Computation): Built {
  return {
    lookup: (id, opts) => cache.wrap(jsonKey(id, opts), () => computation.run(id, opts)),
    close: async () => void (await cache.disconnect()),
  };
}

/**
 * async-cache-dedupe, however its storage is set up: it memoizes a function of one argument,
 * keyed by safe-stable-stringify, so the workload's two arguments travel as one array.
 */
export function viaAsyncCacheDedupe(
  cache: ReturnType<typeof createDedupeCache>,
  computation: Computation,
  close: () => Promise<void>,
): Built {
  const defined = cache.define('lookup', { ttl: TTL_SECONDS }, ([id, opts]: readonly [number, Options]) =>
    computation.run(id, opts),
  );
  return { lookup: (id, opts) => defined.lookup([id, opts]), close };
}
