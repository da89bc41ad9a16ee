import { expect } from 'chai';
import { cached, CacheModule, NullBackend } from 'hoard';
import { startRedis, type RedisServer } from '../../support/servers.js';
import { tierOver, waitFor, type Tier } from './support.js';

/*
 * Tags across two "processes": two tiered backends with their own L1, connections and bus over
 * one Redis. The tag index lives in Redis, so a tag invalidated from one process removes what
 * the other stored, and the bus drops the other's L1 copy.
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
    expect(await inA.profile('42')).to.deep.equal({ id: '42', via: 'b' });
    expect(await inA.profile('7')).to.deep.equal({ id: '7', via: 'a' });
    expect(a.l1.has('profile:"42"')).to.equal(true);

    // Only B invalidates: A is out of the registry, so what reaches A comes over Redis and the bus.
    CacheModule.register('a', new NullBackend());
    expect(await CacheModule.invalidateTags(['user:42'])).to.equal(1);
    await waitFor("A's L1 copy dropped", () => !a.l1.has('profile:"42"'));
    expect(await a.tiered.get('profile:"42"')).to.equal(undefined);
    expect(await a.tiered.get('profile:"7"')).to.deep.equal({ id: '7', via: 'a' });
    expect(inA.computed() + inB.computed()).to.equal(2);
  });
});
