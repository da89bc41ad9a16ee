import { expect } from 'chai';
import { Redis } from 'ioredis';
import sinon from 'sinon';
import {
  Cached,
  CacheBackendError,
  CacheModule,
  CacheSerializationError,
  MemoryBackend,
  MISS,
  NullBackend,
  RedisBackend,
  RedisBus,
  TieredBackend,
  type CacheEvent,
} from 'hoard';
import { RecordingBackend, runBackendConformance } from 'hoard/testing';
import { startRedis, type RedisServer } from '../../support/servers.js';
import { sleep, tierOver, waitFor, type Tier } from './support.js';

/** Moves Date (what MemoryBackend's TTLs read) forward without touching the timers ioredis needs. */
function fakeClock(): sinon.SinonFakeTimers {
  return sinon.useFakeTimers({ now: Date.now(), toFake: ['Date'] });
}

describe('TieredBackend', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let raw: Redis;
  const tiers: Tier[] = [];
  let made = 0;

  /** A tier on the shared server with a prefix and channel of its own, its bus subscribed. */
  async function tier(options: Parameters<typeof tierOver>[2] = {}): Promise<Tier> {
    const name = `tiered-spec-${made++}`;
    const created = tierOver({ l2: redis.url }, { prefix: `${name}:`, channel: name }, options);
    tiers.push(created);
    await waitFor('the bus subscribed', () => created.bus.connected, 5000);
    return created;
  }

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    raw.on('error', () => undefined);
  });
  afterEach(async () => {
    sinon.restore();
    CacheModule.reset();
    await Promise.all(tiers.splice(0).map(({ tiered }) => tiered.close()));
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  runBackendConformance('conformance over memory, Redis and a RedisBus', ({ prefix }) => {
    return new TieredBackend({
      l1: new MemoryBackend(),
      l2: new RedisBackend({ url: redis.url, prefix }),
      bus: new RedisBus({ url: redis.url, channel: `${prefix}bus` }),
    });
  });

  describe('options', () => {
    it('is asynchronous', async () => {
      const { tiered } = await tier();
      expect(tiered.synchronous).to.equal(false);
      expect(tiered.get('absent')).to.be.instanceOf(Promise);
    });

    it('refuses an l1 that is not in-process, an l2 or bus that is not one, and an l1Ttl that is not > 0', () => {
      const l2 = new RedisBackend({ url: redis.url, lazyConnect: true });
      const l1 = new MemoryBackend();
      expect(() => new TieredBackend({ l1: l2 as never, l2 })).to.throw(TypeError, /l1/);
      // Synchronous, but without the MemoryBackend's peekWithTtl the tier's first set would throw.
      expect(() => new TieredBackend({ l1: new RecordingBackend(new MemoryBackend()) as never, l2 })).to.throw(
        TypeError,
        /MemoryBackend/,
      );
      expect(() => new TieredBackend({ l1, l2: undefined as never })).to.throw(TypeError, /l2/);
      expect(() => new TieredBackend({ l1, l2, bus: {} as never })).to.throw(TypeError, /bus/);
      for (const l1Ttl of [0, -1, NaN, Infinity, '5' as never]) {
        expect(() => new TieredBackend({ l1, l2, l1Ttl })).to.throw(TypeError, /l1Ttl/);
      }
    });

    it('offers deleteIfEquals exactly when its L2 does', async () => {
      const { tiered } = await tier();
      expect(tiered.deleteIfEquals).to.be.a('function');
      const without = new TieredBackend({ l1: new MemoryBackend(), l2: new NullBackend() });
      expect(without.deleteIfEquals).to.equal(undefined);
    });
  });

  describe('reads', () => {
    it('answers from L1 first, and copies an L2 hit into L1', async () => {
      const { tiered, l1, l2 } = await tier();
      await l2.set('k', 'from L2');
      expect(l1.has('k')).to.equal(false);
      expect(await tiered.get('k')).to.equal('from L2');
      expect(l1.get('k')).to.equal('from L2');
      await l2.set('k', 'changed behind its back');
      expect(await tiered.get('k')).to.equal('from L2');
    });

    it('tells a stored undefined from a miss, and copies only the former', async () => {
      const { tiered, l1, l2 } = await tier();
      await l2.set('u', undefined);
      expect(await tiered.lookup('u')).to.equal(undefined);
      expect(l1.has('u')).to.equal(true);
      expect(await tiered.lookup('absent')).to.equal(MISS);
      expect(l1.has('absent')).to.equal(false);
      expect(await tiered.has('u')).to.equal(true);
    });

    it('getMany reads only the L1 misses from L2, and copies them', async () => {
      const { tiered, l1, l2 } = await tier();
      await tiered.set('a', 'A');
      await l2.set('b', 'B');
      const reads = sinon.spy(l2, 'lookupWithTtl');
      expect(await tiered.getMany(['a', 'b', 'missing', 'a'])).to.deep.equal(['A', 'B', undefined, 'A']);
      expect(reads.args.map(([key]) => key)).to.deep.equal(['b', 'missing']);
      expect(l1.get('b')).to.equal('B');
      expect(await tiered.getMany(['a', 'b'])).to.deep.equal(['A', 'B']);
      expect(reads.callCount).to.equal(2);
    });

    it('never keeps an L1 copy longer than l1Ttl', async () => {
      const { tiered, l1, l2 } = await tier({ l1Ttl: 0.5 });
      await l2.set('read', 'value', 60);
      await tiered.get('read');
      await tiered.set('written', 'value', 0);
      const clock = fakeClock();
      clock.tick(400);
      expect([l1.has('read'), l1.has('written')]).to.deep.equal([true, true]);
      clock.tick(200);
      expect([l1.has('read'), l1.has('written')]).to.deep.equal([false, false]);
      expect(await tiered.get('written')).to.equal('value');
    });

    it('expires an L1 copy with the L2 entry when L2 can tell the remaining TTL', async () => {
      const { tiered, l1, l2 } = await tier();
      await l2.set('k', 'value', 0.5);
      await l2.set('forever', 'value', 0);
      expect(await tiered.getMany(['k', 'forever'])).to.deep.equal(['value', 'value']);
      const clock = fakeClock();
      clock.tick(600);
      expect(l1.has('k')).to.equal(false);
      expect(l1.has('forever')).to.equal(true);
      clock.tick(tiered.l1Ttl * 1000);
      expect(l1.has('forever')).to.equal(false, 'an entry without expiry is still capped by l1Ttl');
    });
  });

  describe('writes', () => {
    it('set, setMany and add write L2, then L1', async () => {
      const { tiered, l1, l2 } = await tier();
      await tiered.set('s', { n: 1 });
      await tiered.setMany({ m1: 1, m2: 2 });
      expect(await tiered.add('a', 'added')).to.equal(true);
      expect(await l2.getMany(['s', 'm1', 'm2', 'a'])).to.deep.equal([{ n: 1 }, 1, 2, 'added']);
      expect(l1.getMany(['s', 'm1', 'm2', 'a'])).to.deep.equal([{ n: 1 }, 1, 2, 'added']);
    });

    it('keeps an L1 copy of a write no longer than its ttl', async () => {
      const { tiered, l1 } = await tier();
      await tiered.set('short', 'value', 0.3);
      const clock = fakeClock();
      clock.tick(400);
      expect(l1.has('short')).to.equal(false);
    });

    it('an add that finds the key taken keeps nothing in L1 and tells nobody', async () => {
      const { tiered, l1, l2, bus } = await tier();
      await l2.set('taken', 'theirs');
      const publish = sinon.spy(bus, 'publish');
      expect(await tiered.add('taken', 'mine')).to.equal(false);
      expect(l1.has('taken')).to.equal(false);
      expect(publish.callCount).to.equal(0);
      expect(await tiered.get('taken')).to.equal('theirs');
      expect(await tiered.add('free', 'mine')).to.equal(true);
      expect(publish.firstCall.args).to.deep.equal([{ keys: ['free'] }]);
    });

    it('delete and deleteMany remove from both tiers', async () => {
      const { tiered, l1, l2 } = await tier();
      await tiered.setMany({ a: 1, b: 2, c: 3 });
      expect(await tiered.delete('a')).to.equal(true);
      expect(await tiered.deleteMany(['b', 'missing'])).to.equal(1);
      expect(l1.getMany(['a', 'b', 'c'])).to.deep.equal([undefined, undefined, 3]);
      expect(await l2.getMany(['a', 'b', 'c'])).to.deep.equal([undefined, undefined, 3]);
    });

    it('increment counts in L2 and drops the L1 copy', async () => {
      const { tiered, l1, l2 } = await tier();
      await tiered.set('n', 1);
      expect(l1.has('n')).to.equal(true);
      expect(await tiered.increment('n', 4)).to.equal(5);
      expect(l1.has('n')).to.equal(false);
      expect(await l2.get('n')).to.equal(5);
      expect(await tiered.decrement('n')).to.equal(4);
      expect(await tiered.get('n')).to.equal(4);
    });

    it("clear empties L1 and this backend's L2 prefix only", async () => {
      const { tiered, l1, l2 } = await tier();
      const other = await tier();
      await tiered.setMany({ a: 1, b: 2 });
      await other.tiered.set('a', 'kept');
      await tiered.clear();
      expect(l1.size).to.equal(0);
      expect(await l2.getMany(['a', 'b'])).to.deep.equal([undefined, undefined]);
      expect(await other.tiered.get('a')).to.equal('kept');
    });

    it('deleteIfEquals deletes in L2 only on a match, and drops the L1 copy', async () => {
      const { tiered, l1 } = await tier();
      await tiered.set('lock', 'token-1');
      expect(await tiered.deleteIfEquals!('lock', 'token-2')).to.equal(false);
      expect(await tiered.get('lock')).to.equal('token-1');
      expect(await tiered.deleteIfEquals!('lock', 'token-1')).to.equal(true);
      expect(l1.has('lock')).to.equal(false);
      expect(await tiered.has('lock')).to.equal(false);
    });

    it('a value L2 refuses is not kept in L1 either (the old copy stays), and the write rejects', async () => {
      const { tiered, l1 } = await tier();
      await tiered.set('k', 'old');
      const failure = await tiered.set('k', { call: () => 1 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).to.be.instanceOf(CacheSerializationError);
      expect(l1.get('k')).to.equal('old');
      expect(await tiered.l2.get('k')).to.equal('old');
    });

    it('rejects a bad ttl before touching either tier', async () => {
      const { tiered, l1 } = await tier();
      await tiered.set('k', 'kept');
      for (const ttl of [-1, NaN]) {
        const failure = await tiered.set('k', 'new', ttl).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).to.be.instanceOf(TypeError);
      }
      expect(l1.get('k')).to.equal('kept');
    });

    it('close closes the bus and both tiers', async () => {
      const { tiered, l1, l2, bus } = await tier();
      await tiered.set('k', 'v');
      await tiered.close();
      expect(bus.connected).to.equal(false);
      expect(l1.size).to.equal(0);
      expect(l2.client.status).to.equal('end');
    });
  });

  describe('under @Cached', () => {
    it('1000 concurrent calls on a cold key: one computation, one L2 read, one L2 write, one result', async () => {
      const { tiered, l2 } = await tier();
      CacheModule.register('tiered', tiered);
      const set = sinon.spy(l2, 'set');
      const lookup = sinon.spy(l2, 'lookupWithTtl');
      let runs = 0;
      class Reports {
        @Cached({ backend: 'tiered', ttl: 60, key: (region: string) => `report:${region}` })
        async report(region: string): Promise<{ region: string; total: number }> {
          runs++;
          await sleep(20);
          return { region, total: 42 };
        }
      }
      const reports = new Reports();
      const results = await Promise.all(Array.from({ length: 1000 }, () => reports.report('north')));
      expect(runs).to.equal(1);
      expect(set.callCount).to.equal(1);
      expect(lookup.callCount).to.equal(1);
      expect(new Set(results).size).to.equal(1, 'every waiter got the one result');
      expect(results[0]).to.deep.equal({ region: 'north', total: 42 });
      expect(await reports.report('north')).to.equal(results[0], 'the next call is an L1 hit');
      expect(lookup.callCount).to.equal(1);
    });

    it('the L2 reads of one tick, entries and records alike, reach Redis as one command', async () => {
      const { tiered, l1, l2 } = await tier();
      CacheModule.register('tiered', tiered);
      let runs = 0;
      class Reports {
        @Cached({ backend: 'tiered', ttl: 60, tags: ['reports'] })
        async report(id: number): Promise<number> {
          runs++;
          return id * 2;
        }
      }
      const reports = new Reports();
      const ids = Array.from({ length: 100 }, (_, i) => i);
      expect(await Promise.all(ids.map((id) => reports.report(id)))).to.deep.equal(ids.map((id) => id * 2));
      l1.clear();
      const read = sinon.spy(l2, 'lookupWithTtl');
      await raw.config('RESETSTAT');
      expect(await Promise.all(ids.map((id) => reports.report(id)))).to.deep.equal(ids.map((id) => id * 2));
      expect(runs).to.equal(100, 'the second round was all hits');
      // Each call reads its entry, the method's generation and the tag, all in the same tick; the
      // records' reads are shared by the calls.
      expect(read.callCount).to.equal(102);
      const stats = await raw.info('commandstats');
      expect(stats).to.match(/^cmdstat_evalsha:calls=1,/m);
      expect(stats).not.to.match(/^cmdstat_(get|eval):/m);
    });

    it('an L1 hit is served only while the records it was stored under hold its tokens', async () => {
      const { tiered, l1, l2 } = await tier();
      CacheModule.register('tiered', tiered);
      let runs = 0;
      class Reports {
        @Cached({ backend: 'tiered', ttl: 60, tags: ['reports'] })
        async report(id: number): Promise<string> {
          return `${id}:${++runs}`;
        }
      }
      const reports = new Reports();
      const first = await reports.report(1);
      const reads = sinon.spy(l2, 'lookupWithTtl');
      expect(await reports.report(1)).to.equal(first);
      expect(reads.callCount).to.equal(0, 'the entry and its records were read from L1');
      const copies = l1.size;
      await CacheModule.invalidateTags(['reports']);
      expect(l1.size).to.equal(copies - 1, "the tag's copy went, the entry's L1 copy is still there");
      expect(await reports.report(1)).to.equal('1:2');
    });
  });

  describe('faults', () => {
    /** Servers of this block's own, so that killing them disturbs no other spec. */
    let l2Server: RedisServer;
    let busServer: RedisServer;

    async function faultTier(options: Parameters<typeof tierOver>[2] & { busOnL2?: boolean } = {}): Promise<Tier> {
      const name = `tiered-fault-${made++}`;
      const urls = { l2: l2Server.url, bus: options.busOnL2 ? l2Server.url : busServer.url };
      const created = tierOver(urls, { prefix: `${name}:`, channel: name }, options);
      tiers.push(created);
      await waitFor('the bus subscribed', () => created.bus.connected, 5000);
      return created;
    }

    /** Another process's delete of `key`, published straight onto the bus server's channel. */
    async function deletedElsewhere(channel: string, key: string): Promise<void> {
      const publisher = new Redis(busServer.url);
      try {
        await publisher.publish(channel, JSON.stringify({ from: 'elsewhere', keys: [key] }));
      } finally {
        publisher.disconnect();
      }
    }

    before(async () => {
      [l2Server, busServer] = await Promise.all([startRedis(), startRedis()]);
    });
    afterEach(async () => {
      for (const server of [l2Server, busServer]) server.resume();
      await Promise.all([l2Server.restart(), busServer.restart()]);
    });
    after(async () => {
      await Promise.all([l2Server.stop(), busServer.stop()]);
    });

    it('Redis killed: L1 still serves what it holds, and cold calls fail open with an error event', async () => {
      const { tiered } = await faultTier({ busOnL2: true });
      CacheModule.register('tiered', tiered);
      const errors: CacheEvent[] = [];
      CacheModule.on('error', (event) => errors.push(event));
      let runs = 0;
      class Users {
        @Cached({ backend: 'tiered', ttl: 60 })
        async name(id: number): Promise<string> {
          runs++;
          return `user ${id}`;
        }
      }
      const users = new Users();
      expect(await users.name(1)).to.equal('user 1');
      await l2Server.kill();
      expect(await users.name(1)).to.equal('user 1');
      expect(runs).to.equal(1);
      expect(errors).to.deep.equal([]);
      expect(await users.name(2)).to.equal('user 2');
      expect(runs).to.equal(2);
      expect(errors.map(({ operation }) => operation)).to.deep.equal(['get']);
    });

    it('an L2 write that fails rejects: a set leaves the L1 copy as it was, a delete or increment drops it', async () => {
      const { tiered, l1 } = await faultTier({ busOnL2: true });
      await tiered.set('k', 'old');
      await l2Server.kill();
      const writes: [() => Promise<unknown>, unknown][] = [
        [() => tiered.set('k', 'new'), 'old'],
        [() => tiered.delete('k'), undefined],
        [() => tiered.increment('k'), undefined],
      ];
      for (const [write, left] of writes) {
        l1.set('k', 'old');
        const failure = await write().then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).to.be.instanceOf(CacheBackendError);
        expect(l1.get('k')).to.equal(left);
      }
    });

    it('Redis killed: a staleTtl value keeps being served from L1 while every refresh fails to write', async () => {
      const { tiered } = await faultTier({ busOnL2: true });
      CacheModule.register('tiered', tiered);
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      let version = 1;
      let runs = 0;
      class Rates {
        @Cached({ backend: 'tiered', ttl: 0.3, staleTtl: 30 })
        async rate(currency: string): Promise<string> {
          runs++;
          return `${currency}@v${version}`;
        }
      }
      const rates = new Rates();
      expect(await rates.rate('EUR')).to.equal('EUR@v1');
      await l2Server.kill();
      version = 2;
      await sleep(400);
      for (let call = 0; call < 3; call++) {
        expect(await rates.rate('EUR')).to.equal('EUR@v1');
        await waitFor(
          'the background refresh failed to write',
          () => operations.filter((op) => op === 'set').length > call,
          3000,
        );
      }
      expect(runs).to.equal(4);
    });

    it('Redis back: the tiered backend is used again within 5 s', async () => {
      const { tiered } = await faultTier({ busOnL2: true });
      await l2Server.kill();
      await l2Server.restart();
      await waitFor(
        'writes and reads reach L2 again',
        async () => {
          const written = await tiered.set('k', 'after').then(
            () => true,
            () => false,
          );
          return written && (await tiered.l2.get('k')) === 'after';
        },
        5000,
      );
    });

    it('bus down: new L1 copies live at most 1 s, older ones stay, and all go when it is back', async () => {
      const { tiered, l1, l2, bus } = await faultTier();
      await tiered.set('before', 'value', 60);
      await busServer.kill();
      await waitFor('the bus noticed', () => !bus.connected);
      await tiered.set('written', 'value', 60);
      await l2.set('read', 'value', 60);
      await tiered.get('read');
      const clock = fakeClock();
      clock.tick(900);
      expect([l1.has('written'), l1.has('read')]).to.deep.equal([true, true]);
      clock.tick(200);
      expect([l1.has('written'), l1.has('read')]).to.deep.equal([false, false]);
      expect(l1.has('before')).to.equal(true, 'copies from before the outage keep serving');
      expect(await l2.get('written')).to.equal('value');
      clock.restore();
      await busServer.restart();
      await waitFor('the bus is back', () => bus.connected, 5000);
      expect(l1.has('before')).to.equal(false, 'invalidations sent during the outage were lost');
      await tiered.set('later', 'value', 60);
      const later = fakeClock();
      later.tick(1100);
      expect(l1.has('later')).to.equal(true);
    });

    it('bus down: a write still tries to publish, and does not fail when it cannot', async () => {
      const { tiered, bus } = await faultTier();
      await busServer.kill();
      await waitFor('the bus noticed', () => !bus.connected);
      const publish = sinon.spy(bus, 'publish');
      await tiered.set('k', 'value');
      expect(publish.callCount).to.equal(1);
      const sent = publish.firstCall.returnValue.then(
        () => 'sent',
        () => 'failed',
      );
      expect(await sent).to.equal('failed');
    });

    it('a read under way when an invalidation lands does not copy the old value into L1', async () => {
      const { tiered, l1, l2, bus } = await faultTier({ l2Timeout: 5 });
      await l2.set('k', 'old');
      const drop = sinon.spy(l1, 'delete');
      await l2Server.pause();
      const reading = tiered.get('k');
      await deletedElsewhere(bus.channel, 'k');
      await waitFor('the invalidation arrived', () => drop.calledWith('k'));
      l2Server.resume();
      expect(await reading).to.equal('old');
      expect(l1.has('k')).to.equal(false);
    });

    it('a lookup joins the L2 read of its key under way, unless an invalidation came after it was sent', async () => {
      const { tiered, l2 } = await tier();
      await l2.set('k', 'old');
      const reads = sinon.spy(l2, 'lookupWithTtl');
      const first = tiered.get('k');
      const second = tiered.get('k');
      expect(reads.callCount).to.equal(1, 'the second lookup joined the first read');
      const writing = tiered.set('k', 'new');
      const third = tiered.get('k');
      expect(reads.callCount).to.equal(2, 'the write invalidated the key: the next lookup reads again');
      expect(await second).to.equal(await first);
      await writing;
      expect(await third).to.equal('new');
    });

    it('a write under way when an invalidation lands does not keep its value in L1', async () => {
      const { tiered, l1, bus } = await faultTier({ l2Timeout: 5 });
      const drop = sinon.spy(l1, 'delete');
      await l2Server.pause();
      const writing = tiered.set('k', 'mine');
      expect(drop.callCount).to.equal(1, 'the write dropped the old copy first');
      await deletedElsewhere(bus.channel, 'k');
      await waitFor('the invalidation arrived', () => drop.callCount === 2);
      l2Server.resume();
      await writing;
      expect(l1.has('k')).to.equal(false);
      expect(await tiered.get('k')).to.equal('mine', 'L2 has the write, and reads go there');
    });
  });
});
