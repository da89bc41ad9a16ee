import { expect } from 'chai';
import { Redis } from 'ioredis';
import { cached, CacheModule, RedisBackend, type CacheEvent } from 'hoard';
import { startRedis, type RedisServer } from '../support/servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** staleTtl against a real Redis with real short TTLs: the entry lives ttl + staleTtl there. */
describe('staleTtl on Redis', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let backend: RedisBackend;
  let errors: CacheEvent[];
  let run = 0;

  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  beforeEach(() => {
    CacheModule.reset();
    backend = new RedisBackend({ url: redis.url, prefix: `stale${run++}:` });
    CacheModule.register(backend);
    errors = [];
    CacheModule.on('error', (event) => errors.push(event));
  });
  afterEach(() => CacheModule.close());

  /** A slow upstream whose answers carry a version, so a stale answer is told from a fresh one. */
  function upstream() {
    const state = { version: 1, calls: 0, failing: false };
    const price = cached(
      async (item: string) => {
        state.calls++;
        await sleep(200);
        if (state.failing) throw new Error('upstream down');
        return `${item}@v${state.version}`;
      },
      { name: 'price', ttl: 0.3, staleTtl: 30 },
    );
    return { state, price };
  }

  it('serves the stale value at once past ttl, with one refresh for many callers', async () => {
    const { state, price } = upstream();
    expect(await price('tea')).to.equal('tea@v1');
    state.version = 2;
    await sleep(400);
    // The refresh takes 200 ms; these callers get the stale value without waiting for it.
    const stale = await Promise.all(Array.from({ length: 20 }, () => price('tea')));
    expect(stale).to.deep.equal(Array(20).fill('tea@v1'));
    await sleep(300);
    expect(await price('tea')).to.equal('tea@v2');
    expect(state.calls).to.equal(2);
    const admin = new Redis(redis.url);
    const ttl = await admin.pttl(`${backend.prefix}price:"tea"`);
    admin.disconnect();
    expect(ttl).to.be.within(29_000, 30_300);
  });

  it('keeps serving the stale value while the refresh throws, and reports each failure', async () => {
    const { state, price } = upstream();
    await price('tea');
    state.failing = true;
    await sleep(400);
    expect(await price('tea')).to.equal('tea@v1');
    await sleep(300);
    expect(await price('tea')).to.equal('tea@v1');
    await sleep(300);
    expect(errors.map((e) => e.operation)).to.deep.equal(['refresh', 'refresh']);
  });

  it('keeps serving the stale value when Redis refuses the refreshed write', async () => {
    const { state, price } = upstream();
    await price('tea');
    const admin = new Redis(redis.url);
    try {
      // A full Redis (OOM) answers reads and refuses writes: the backend errors on the refresh.
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      state.version = 2;
      await sleep(400);
      expect(await price('tea')).to.equal('tea@v1');
      await sleep(300);
      expect(await price('tea')).to.equal('tea@v1');
      expect(errors.map((e) => e.operation)).to.include('set');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });
});
