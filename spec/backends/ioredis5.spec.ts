import { expect } from 'chai';
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis5';
import { CacheModule, cached, MemoryBackend, RedisBackend, RedisBus, TieredBackend, type RedisClient } from 'hoard';
import { runBackendConformance } from 'hoard/testing';
import { startRedis, type RedisServer } from '../support/servers.js';
import { waitFor } from './tiered/support.js';

/*
 * Applications often hold an ioredis 5 client. This file is compiled with the specs, so the
 * assignments below are the type check: an ioredis 5 `Redis` and `Cluster` are RedisClients.
 */
const acceptsRedis5: (client: Redis5) => RedisClient = (client) => client;
const acceptsCluster5: (client: Cluster5) => RedisClient = (client) => client;

describe('a ready ioredis 5 client', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  const clients: Redis5[] = [];
  const client5 = () => {
    const client = new Redis5(redis.url);
    clients.push(client);
    return client;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await redis.stop();
  });

  it('is the ioredis 5 the dev dependency installs, typed as a RedisClient', () => {
    const client = new Redis5({ lazyConnect: true });
    expect(acceptsRedis5(client)).to.equal(client);
    expect(typeof acceptsCluster5).to.equal('function');
  });

  runBackendConformance(
    'RedisBackend conformance over an ioredis 5 client',
    ({ prefix }) => new RedisBackend({ client: client5(), prefix }),
  );

  it('serves a TieredBackend with a RedisBus on ioredis 5 clients, which stay open after close', async () => {
    const tier = () =>
      new TieredBackend({
        l1: new MemoryBackend(),
        l2: new RedisBackend({ client: client5(), prefix: 'v5:' }),
        bus: new RedisBus({ client: client5(), channel: 'v5' }),
      });
    const [a, b] = [tier(), tier()];
    await waitFor('both buses subscribed', () => a.bus!.connected && b.bus!.connected, 5000);
    CacheModule.reset();
    CacheModule.register(a);
    let runs = 0;
    const square = cached(async (n: number) => (runs++, n * n), { name: 'square', ttl: 60 });
    expect(await square(3)).to.equal(9);
    expect(await square(3)).to.equal(9);
    expect(runs).to.equal(1);
    await b.set('k', 1);
    expect(await a.get('k')).to.equal(1);
    await b.set('k', 2);
    await waitFor('a dropped its copy', () => !a.l1.has('k'));
    expect(await a.get('k')).to.equal(2);
    await CacheModule.close();
    CacheModule.reset();
    await b.close();
    expect(clients.every((client) => client.status === 'ready')).to.equal(true);
  });
});
