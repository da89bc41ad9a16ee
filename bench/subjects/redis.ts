import { createKeyv } from '@keyv/redis';
import { Cacheable as TypeCacheable } from '@type-cacheable/core';
import { createCache as createDedupeCache } from 'async-cache-dedupe';
import { IoRedisAdapter } from '@type-cacheable/ioredis-adapter';
import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { RedisBackend } from 'hoard';
import { Redis } from 'ioredis';
import type { RedisServer } from '../../spec/support/servers.js';
import type { Options, Value } from '../workload.js';
import { cachedMethod, registerBackend, TTL_SECONDS, REMOTE_TIMEOUT } from './hoard.js';
import { viaAsyncCacheDedupe, viaBentocache, viaCacheManager } from './peers.js';
import { memoizeRemote, type SubjectFactory } from './subject.js';

/**
 * Every subject gets a Redis database of its own (emptied first), so no two share entries and
 * none pays for a key prefix the others do not.
 */
let databases = 0;

async function freshDatabase(server: RedisServer): Promise<number> {
  const db = databases++ % 16;
  const admin = new Redis({ host: server.host, port: server.port, db });
  await admin.flushdb();
  admin.disconnect();
  return db;
}

/** The least a Redis cache does: an auto-pipelined ioredis GET of `JSON.stringify(args)`, JSON-parsed. */
export const floor: SubjectFactory<RedisServer> = {
  name: 'floor: ioredis GET (auto-pipelined)',
  role: 'floor',
  async create(computation, server) {
    const redis = new Redis({
      host: server.host,
      port: server.port,
      db: await freshDatabase(server),
      enableAutoPipelining: true,
    });
    return {
      lookup: memoizeRemote(
        (key) => redis.get(key),
        (key, text) => redis.set(key, text, 'EX', TTL_SECONDS),
        computation,
      ),
      close: async () => redis.disconnect(),
    };
  },
};

export const hoard: SubjectFactory<RedisServer> = {
  name: 'hoard @Cached + RedisBackend',
  role: 'hoard',
  async create(computation, server) {
    const backend = new RedisBackend({ url: `${server.url}/${await freshDatabase(server)}`, timeout: REMOTE_TIMEOUT });
    return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
  },
};

export const cacheManager: SubjectFactory<RedisServer> = {
  name: 'cache-manager + @keyv/redis',
  role: 'peer',
  async create(computation, server) {
    const keyv = createKeyv(`${server.url}/${await freshDatabase(server)}`);
    return viaCacheManager(createCache({ stores: [keyv], ttl: TTL_SECONDS * 1000 }), computation);
  },
};

export const asyncCacheDedupe: SubjectFactory<RedisServer> = {
  name: 'async-cache-dedupe (Redis storage)',
  role: 'peer',
  async create(computation, server) {
    const client = new Redis({ host: server.host, port: server.port, db: await freshDatabase(server) });
    const cache = createDedupeCache({ ttl: TTL_SECONDS, storage: { type: 'redis', options: { client } } });
    return viaAsyncCacheDedupe(cache, computation, async () => client.disconnect());
  },
};

const bentocache: SubjectFactory<RedisServer> = {
  name: 'bentocache (Redis tier only)',
  role: 'peer',
  async create(computation, server) {
    const connection = { host: server.host, port: server.port, db: await freshDatabase(server) };
    const bento = new BentoCache({ default: 'redis', stores: { redis: bentostore().useL2Layer(redisDriver({ connection })) } });
    return viaBentocache(bento, computation);
  },
};

const typeCacheable: SubjectFactory<RedisServer> = {
  name: '@type-cacheable + ioredis adapter',
  role: 'peer',
  async create(computation, server) {
    const redis = new Redis({ host: server.host, port: server.port, db: await freshDatabase(server) });
    const client = new IoRedisAdapter(redis);
    class Reports {
      @TypeCacheable({ client, ttlSeconds: TTL_SECONDS })
      async lookup(id: number, opts: Options): Promise<Value> {
        return computation.result(id, opts);
      }
    }
    const reports = new Reports();
    return { lookup: (id, opts) => reports.lookup(id, opts), close: async () => redis.disconnect() };
  },
};

export const redisSubjects: SubjectFactory<RedisServer>[] = [
  floor,
  hoard,
  asyncCacheDedupe,
  cacheManager,
  bentocache,
  typeCacheable,
];
