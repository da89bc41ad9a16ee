import KeyvRedis, { createKeyv } from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Cacheable } from 'cacheable';
import { MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';
import Keyv from 'keyv';
import type { RedisServer } from '../../spec/support/servers.js';
import { cachedMethod, registerBackend, TTL_SECONDS, REMOTE_TIMEOUT } from './hoard.js';
import { floor as memoryFloor } from './memory.js';
import { viaBentocache, viaCacheManager } from './peers.js';
import type { SubjectFactory } from './subject.js';

/** Every subject's keys, and its bus channel, are its own on the one Redis. */
let namespaces = 0;
const freshNamespace = () => `t${++namespaces}`;

/** A tiered hit is served from memory, so the floor is the memory floor. */
const floor: SubjectFactory<RedisServer> = {
  name: memoryFloor.name,
  role: 'floor',
  create: (computation) => memoryFloor.create(computation),
};

/** hoard's TieredBackend on the one Redis, with a bus, its L1 holding at most `l1Entries`. */
function hoardTiered(name: string, l1Entries: number, peek = true): SubjectFactory<RedisServer> {
  return {
    name,
    role: 'hoard',
    async create(computation, server) {
      const namespace = freshNamespace();
      const backend = new TieredBackend({
        l1: new MemoryBackend({ maxEntries: l1Entries }),
        l2: new RedisBackend({ url: server.url, prefix: `${namespace}:`, timeout: REMOTE_TIMEOUT }),
        bus: new RedisBus({ url: server.url, channel: namespace }),
        // L1 copies outlive the run, which under load took longer than the default 60 s.
        l1Ttl: TTL_SECONDS,
      });
      // Hidden before registration, which is when the module takes it.
      if (!peek) Object.defineProperty(backend, 'peek', { value: undefined });
      return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
    },
  };
}

const hoard = hoardTiered('hoard @Cached + TieredBackend', 10_000);
/** The same without `peek`: every hit through `lookup`'s promise and the records check's. */
const hoardWithoutPeek = hoardTiered('hoard @Cached + TieredBackend, peek hidden', 10_000, false);

/**
 * An L1 of one entry: every call's entry and its method's generation record have been pushed
 * out of it by the calls before, so every call reads both from Redis, as a cold L1 would.
 */
export const hoardEmptyL1 = hoardTiered('hoard @Cached + TieredBackend, L1 of 1 entry', 1);

const bentocache: SubjectFactory<RedisServer> = {
  name: 'bentocache (memory, Redis, bus)',
  role: 'peer',
  async create(computation, server) {
    const connection = { host: server.host, port: server.port };
    const bento = new BentoCache({
      default: 'tiered',
      prefix: freshNamespace(),
      stores: {
        tiered: bentostore()
          .useL1Layer(memoryDriver({ maxItems: 10_000 }))
          .useL2Layer(redisDriver({ connection }))
          .useBus(redisBusDriver({ connection })),
      },
    });
    return viaBentocache(bento, computation);
  },
};

const cacheManager: SubjectFactory<RedisServer> = {
  name: 'cache-manager (memory, @keyv/redis)',
  role: 'peer',
  async create(computation, server) {
    const stores = [new Keyv(), createKeyv(server.url, { namespace: freshNamespace() })];
    return viaCacheManager(createCache({ stores, ttl: TTL_SECONDS * 1000 }), computation);
  },
};

const cacheable: SubjectFactory<RedisServer> = {
  name: 'cacheable (memory, @keyv/redis)',
  role: 'peer',
  async create(computation, server) {
    const cache = new Cacheable({
      secondary: new KeyvRedis(server.url, { namespace: freshNamespace() }),
      ttl: TTL_SECONDS * 1000,
    });
    return { lookup: cache.wrap(computation.run), close: () => cache.disconnect() };
  },
};

export const tieredSubjects: SubjectFactory<RedisServer>[] = [
  floor,
  hoard,
  hoardWithoutPeek,
  bentocache,
  cacheManager,
  cacheable,
];
