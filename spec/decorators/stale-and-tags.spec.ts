import { expect } from 'chai';
import diagnostics from 'node:diagnostics_channel';
import sinon from 'sinon';
import { Cached, CacheModule, MemoryBackend, type CacheEvent } from 'hoard';
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
      it(`invalidateTags deletes every entry stored with a tag, on a ${kind} backend`, async () => {
        if (kind === 'asynchronous') CacheModule.register(new AsyncMemoryBackend());
        const backend = CacheModule.get();
        const users = new Users();
        await users.profile('1');
        await users.profile('2');
        await users.count();
        expect(await CacheModule.invalidateTags(['user:1'])).to.equal(1);
        expect(await backend.has('Users.profile:"1"')).to.equal(false);
        expect(await backend.has('Users.profile:"2"')).to.equal(true);
        expect(await CacheModule.invalidateTags(['users'])).to.equal(2);
        expect(await backend.has('Users.count:')).to.equal(false);
        expect(await CacheModule.invalidateTags(['users'])).to.equal(0);
        await users.profile('2');
        expect(users.loads).to.equal(4);
      });
    }

    it('emits evict for each entry a tag invalidation deletes, on every registered backend', async () => {
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
      expect(await CacheModule.invalidateTags(['users'])).to.equal(2);
      expect(evicted).to.deep.equal([
        { backend: 'default', key: 'Users.count:' },
        { backend: 'second', key: 'Other.list:' },
      ]);
    });

    it('reports a failure to record tags and still returns the value', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register(remote);
      sinon.stub(remote, 'increment').rejects(new Error('no increments today'));
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      expect(await new Users().count()).to.equal(2);
      expect(operations).to.deep.equal(['tag']);
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
      expect(seen).to.deep.equal([['miss', event], ['hit', event]]);
    });
  });
});
