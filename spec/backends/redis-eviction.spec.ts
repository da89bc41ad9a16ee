import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Cached, cached, CacheModule, RedisBackend } from 'hoard';
import { startRedis, type RedisServer } from '../support/servers.js';

/*
 * Redis run as a cache: maxmemory with allkeys-lru (docs/production.md). Entries that are read
 * often survive while hoard's records (generations, tags) are evicted; whatever was invalidated
 * must stay invalidated. The churn below keeps the entry in use by reading it directly, as other
 * callers would, and writes filler until no record of hoard's is left.
 */
describe('RedisBackend under maxmemory with allkeys-lru', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;

  before(async () => {
    redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    raw = new Redis(redis.url);
  });

  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  beforeEach(async () => {
    await raw.config('SET', 'maxmemory', '0');
    await raw.flushdb();
    CacheModule.reset();
    CacheModule.register(new RedisBackend({ url: redis.url, prefix: 'app:' }));
  });

  afterEach(async () => {
    await CacheModule.close();
    CacheModule.reset();
  });

  /**
   * Evicts every key of hoard's own while `entry` stays in use; says how many keys Redis evicted.
   * Redis tells idle times apart by the second, so filler is written first and left idle with the
   * records for two seconds while the entry is read; then memory is capped where it stands and
   * new filler pushes out the idlest keys: old filler and the records, never the entry.
   */
  async function churnUntilRecordsAreGone(entry: string): Promise<number> {
    const records = async () => (await raw.keys('app:hoard:*')).length;
    expect(await records(), 'records before the churn').to.be.above(0);
    const filler = 'x'.repeat(4096);
    const fill = async (name: string, count: number) => {
      const batch = raw.pipeline();
      for (let i = 0; i < count; i++) batch.set(`${name}:${i}`, filler);
      await batch.exec();
    };
    await fill('old', 400);
    await sleep(2000);
    await raw.get(entry);
    const stored = (await raw.getBuffer(entry))!;
    const used = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
    await raw.config('SET', 'maxmemory', String(used));
    for (let round = 0; (await records()) > 0; round++) {
      expect(round, 'rounds of churn').to.be.below(400);
      // Redis's LRU clock ticks by the second, so the entry read now ties with filler written
      // this second and is sometimes sampled out: the same bytes put back keep the scenario.
      if ((await raw.get(entry)) === null) await raw.set(entry, stored);
      await fill(`new:${round}`, 5);
    }
    if ((await raw.exists(entry)) === 0) await raw.set(entry, stored);
    expect(await raw.getBuffer(entry), 'the entry as stored before the churn').to.deep.equal(stored);
    return Number(/evicted_keys:(\d+)/.exec(await raw.info('stats'))![1]);
  }

  it('never serves an invalidated value after churn evicted the tag records while the entry survived', async () => {
    let version = 1;
    const profile = cached(async (id: string) => `${id}@v${version}`, {
      name: 'profile',
      ttl: 0,
      tags: (id: string) => [`user:${id}`],
    });
    expect(await profile('1')).to.equal('1@v1');
    expect(await churnUntilRecordsAreGone('app:profile:"1"')).to.be.above(0);
    version = 2;
    await CacheModule.invalidateTags(['user:1']);
    expect(await profile('1')).to.equal('1@v2');
    expect(await profile('1')).to.equal('1@v2');
  });

  it('never serves a value from before invalidate(Class, method) after churn evicted the generation record', async () => {
    let version = 1;
    /** A class of its own per call: the second stands for a process that reads the method afresh. */
    function orders() {
      class Orders {
        @Cached({ ttl: 0 })
        async total(id: number): Promise<string> {
          return `${id}@v${version}`;
        }
      }
      return Orders;
    }
    const First = orders();
    expect(await new First().total(1)).to.equal('1@v1');
    await CacheModule.invalidate(First, 'total');
    version = 2;
    expect(await new First().total(1)).to.equal('1@v2');
    expect(await churnUntilRecordsAreGone('app:Orders.total:1')).to.be.above(0);
    version = 3;
    expect(await new (orders())().total(1)).to.equal('1@v3');
    expect(await new First().total(1)).to.equal('1@v3');
  });
});
