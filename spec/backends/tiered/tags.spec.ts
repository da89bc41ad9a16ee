import { expect } from 'chai';
import { cached, CacheModule, NullBackend } from 'hoard';
import { startRedis, type RedisServer } from '../../support/servers.js';
import { tierOver, waitFor, type Tier } from './support.js';

/*
 * Tags across two "processes": two tiered backends with their own L1, connections and bus over
 * one Redis. Tag records live in Redis, so a tag invalidated from one process reaches what the
 * other stored, and the bus drops the other's L1 copy of the record.
 */
describe('tags across processes over TieredBackend', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let a: Tier;
  let b: Tier;

  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  beforeEach(async () => {
    CacheModule.reset();
    const shared = { prefix: 'tags:', channel: 'tags' };
    a = tierOver({ l2: redis.url }, shared);
    b = tierOver({ l2: redis.url }, shared);
    await waitFor('both buses subscribed', () => a.bus.connected && b.bus.connected, 5000);
    CacheModule.register('a', a.tiered);
    CacheModule.register('b', b.tiered);
  });

  afterEach(async () => {
    await b.tiered.clear();
    CacheModule.reset();
    await Promise.all([a.tiered.close(), b.tiered.close()]);
  });

  function profileOn(backend: string) {
    let computed = 0;
    const profile = cached(
      async (id: string) => {
        computed++;
        return { id, via: backend };
      },
      { name: 'profile', backend, ttl: 60, tags: (id: string) => [`user:${id}`] },
    );
    return { profile, computed: () => computed };
  }

  it('an entry stored by one process and tagged there is invalidated from the other, L1 copies included', async () => {
    const inA = profileOn('a');
    const inB = profileOn('b');
    expect(await inB.profile('42')).to.deep.equal({ id: '42', via: 'b' });
    expect(await inA.profile('7')).to.deep.equal({ id: '7', via: 'a' });
    // B's writes reach A's bus while A reads: read until A's L1 holds the entry and its tag record.
    await waitFor("A's L1 copies", async () => {
      expect(await inA.profile('42')).to.deep.equal({ id: '42', via: 'b' });
      return a.l1.has('profile:"42"') && a.l1.has('hoard:tag:user:42');
    });

    // Only B invalidates: A is out of the registry, so what reaches A comes over Redis and the bus.
    CacheModule.register('a', new NullBackend());
    await CacheModule.invalidateTags(['user:42']);
    await waitFor("A's L1 copy of the record dropped", () => !a.l1.has('hoard:tag:user:42'));
    CacheModule.register('a', a.tiered);
    expect(await inA.profile('42')).to.deep.equal({ id: '42', via: 'a' });
    expect(await inA.profile('7')).to.deep.equal({ id: '7', via: 'a' });
    expect([inA.computed(), inB.computed()]).to.deep.equal([2, 1]);
  });
});
