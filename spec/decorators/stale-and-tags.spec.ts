import { expect } from 'chai';
import diagnostics from 'node:diagnostics_channel';
import sinon from 'sinon';
import { Cached, cached, CacheModule, MemoryBackend, type CacheEvent } from 'hoard';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { flavour } from '../support/flavour.js';
import { useFreshMemoryModule } from '../support/fresh-module.js';

/** Lets queued promise callbacks (a background refresh) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe(`staleTtl, tags and diagnostics channels [${flavour} decorators]`, () => {
  const memory = useFreshMemoryModule();

  describe('staleTtl', () => {
    let clock: sinon.SinonFakeTimers;
    let version: number;
    let body: sinon.SinonSpy;

    class Prices {
      @Cached({ ttl: 10, staleTtl: 60 })
      async price(item: string) {
        return body(item);
      }
    }

    beforeEach(() => {
      clock = sinon.useFakeTimers({ now: 0, toFake: ['Date'] });
      version = 1;
      body = sinon.spy(async (item: string) => `${item}@v${version}`);
    });

    it('serves the stale value at once past ttl and refreshes it once in the background', async () => {
      const prices = new Prices();
      expect(await prices.price('tea')).to.equal('tea@v1');
      version = 2;
      clock.tick(10_000);
      const stale = await Promise.all([prices.price('tea'), prices.price('tea'), prices.price('tea')]);
      expect(stale).to.deep.equal(['tea@v1', 'tea@v1', 'tea@v1']);
      await settle();
      expect(body.callCount).to.equal(2);
      expect(await prices.price('tea')).to.equal('tea@v2');
      expect(body.callCount).to.equal(2);
    });

    it('keeps serving the stale value when the refresh fails, and reports the failure', async () => {
      const errors: CacheEvent[] = [];
      CacheModule.on('error', (event) => errors.push(event));
      const prices = new Prices();
      await prices.price('tea');
      body = sinon.spy(async () => {
        throw new Error('upstream down');
      });
      clock.tick(10_000);
      expect(await prices.price('tea')).to.equal('tea@v1');
      await settle();
      expect(await prices.price('tea')).to.equal('tea@v1');
      await settle();
      expect(errors.map((e) => e.operation)).to.deep.equal(['refresh', 'refresh']);
      expect((errors[0]!.error as Error).message).to.equal('upstream down');
    });

    it('computes afresh once ttl + staleTtl have passed', async () => {
      const prices = new Prices();
      await prices.price('tea');
      version = 3;
      clock.tick(70_000);
      expect(await prices.price('tea')).to.equal('tea@v3');
    });

    it('stores for ttl + staleTtl on the backend', async () => {
      const set = sinon.spy(memory(), 'set');
      await new Prices().price('tea');
      expect(set.firstCall.args[2]).to.equal(70);
    });
  });

  describe('tags', () => {
    class Users {
      loads = 0;
      @Cached({ ttl: 60, tags: (id: string) => [`user:${id}`, 'users'] })
      async profile(id: string) {
        this.loads++;
        return { id, loads: this.loads };
      }
      @Cached({ ttl: 60, tags: ['users'] })
      async count() {
        this.loads++;
        return 2;
      }
    }

    for (const kind of ['synchronous', 'asynchronous'] as const) {
      it(`invalidateTags makes every entry stored with a tag a miss, on a ${kind} backend`, async () => {
        if (kind === 'asynchronous') CacheModule.register(new AsyncMemoryBackend());
        const users = new Users();
        await users.profile('1');
        await users.profile('2');
        await users.count();
        await CacheModule.invalidateTags(['user:1']);
        expect(await users.profile('1')).to.deep.equal({ id: '1', loads: 4 });
        expect(await users.profile('2')).to.deep.equal({ id: '2', loads: 2 });
        await CacheModule.invalidateTags(['users']);
        expect(await users.profile('2')).to.deep.equal({ id: '2', loads: 5 });
        expect(await users.count()).to.equal(2);
        expect(users.loads).to.equal(6);
        expect(await users.profile('1')).to.deep.equal({ id: '1', loads: 7 });
        expect(await users.profile('1')).to.deep.equal({ id: '1', loads: 7 });
      });
    }

    it('never brings an invalidated entry back when the LRU evicted its tag record', async () => {
      const lru = new MemoryBackend({ maxEntries: 50 });
      CacheModule.register(lru);
      let version = 1;
      const profile = cached(async (id: string) => `${id}@v${version}`, {
        name: 'profile',
        ttl: 60,
        tags: (id: string) => [`user:${id}`],
      });
      expect(await profile('1')).to.equal('1@v1');
      // Other data churns the LRU while the entry itself stays in use.
      for (let i = 0; i < 200; i++) {
        lru.set(`churn:${i}`, i);
        lru.lookup('profile:"1"');
      }
      expect(lru.has('profile:"1"')).to.equal(true);
      version = 2;
      await CacheModule.invalidateTags(['user:1']);
      expect(await profile('1')).to.equal('1@v2');
    });

    it('emits evict with the record of each tag, on every registered backend', async () => {
      const second = new MemoryBackend();
      CacheModule.register('second', second);
      class Other {
        @Cached({ backend: 'second', tags: ['users'] })
        async list() {
          return [];
        }
      }
      await new Users().count();
      await new Other().list();
      const evicted: CacheEvent[] = [];
      CacheModule.on('evict', (event) => evicted.push(event));
      await CacheModule.invalidateTags(['users']);
      expect(evicted).to.deep.equal([
        { backend: 'default', key: 'hoard:tag:users' },
        { backend: 'second', key: 'hoard:tag:users' },
      ]);
    });

    it('reports a failure to read a tag record and still returns the value', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register(remote);
      const lookup = sinon.stub(remote, 'lookup').callThrough();
      lookup.withArgs('hoard:tag:users').rejects(new Error('no records today'));
      const errors: CacheEvent[] = [];
      CacheModule.on('error', (event) => errors.push(event));
      expect(await new Users().count()).to.equal(2);
      expect(errors.map((event) => [event.operation, (event.error as Error).message])).to.deep.equal([
        ['get', 'no records today'],
      ]);
    });
  });

  describe('diagnostics_channel', () => {
    it('publishes hit and miss on hoard:hit and hoard:miss, with no listener registered', () => {
      const seen: [string, unknown][] = [];
      const onHit = (message: unknown) => seen.push(['hit', message]);
      const onMiss = (message: unknown) => seen.push(['miss', message]);
      diagnostics.subscribe('hoard:hit', onHit);
      diagnostics.subscribe('hoard:miss', onMiss);
      try {
        class Traced {
          @Cached()
          value(x: number) {
            return x;
          }
        }
        new Traced().value(1);
        new Traced().value(1);
      } finally {
        diagnostics.unsubscribe('hoard:hit', onHit);
        diagnostics.unsubscribe('hoard:miss', onMiss);
      }
      const event = { backend: 'default', key: 'Traced.value:1', method: 'Traced.value' };
      expect(seen).to.deep.equal([
        ['miss', event],
        ['hit', event],
      ]);
    });
  });
});
