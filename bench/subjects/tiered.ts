import KeyvRedis, { createKeyv } from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Cacheable } from 'cacheable';
import { MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';
import Keyv from 'keyv';
import type { RedisServer } from '../../spec/support/servers.js';
import { cachedMethod, registerBackend, TTL_SECONDS } from './hoard.js';
import { floor as memoryFloor } from './memory.js';
import { viaBentocache, viaCacheManager } from './peers.js';
import type { SubjectFactory } from './subject.js';

/** Every subject's keys, and its bus channel, are its own on the one Redis. */
let namespaces = 0;
const freshNamespace = () => `t${++namespaces}`;

/** A tiered hit is served from memory, so the floor is the memory floor. */
const floor: SubjectFactory<RedisServer> = { name: memoryFloor.name, role: 'floor', create: (computation) => memoryFloor.create(computation) };

const hoard: SubjectFactory<RedisServer> = {
  name: 'hoard @Cached + TieredBackend',
  role: 'hoard',
  async create(computation, server) {
    const namespace = freshNamespace();
    const backend = new TieredBackend({
      l1: new MemoryBackend({ maxEntries: 10_000 }),
      l2: new RedisBackend({ url: server.url, prefix: `${namespace}:` }),
      bus: new RedisBus({ url: server.url, channel: namespace }),
    });
    return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
  },
};

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
    const cache = new Cacheable({ secondary: new KeyvRedis(server.url, { namespace: freshNamespace() }), ttl: TTL_SECONDS * 1000 });
    return { lookup: cache.wrap(computation.run), close: () => cache.disconnect() };
  },
};

export const tieredSubjects: SubjectFactory<RedisServer>[] = [floor, hoard, bentocache, cacheManager, cacheable];
