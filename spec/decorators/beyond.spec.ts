import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, cached, CacheConfigError, CacheModule, MemoryBackend, type CacheEvent } from 'hoard';
import { RecordingBackend } from 'hoard/testing';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { flavour } from '../support/flavour.js';

describe(`lock, earlyRefresh, jitter, method generations, version [${flavour} decorators]`, () => {
  beforeEach(() => CacheModule.reset());
  afterEach(() => sinon.restore());

  describe('O(1) method invalidation', () => {
    for (const kind of ['memory', 'asynchronous'] as const) {
      it(`leaves 10 000 entries behind with a constant number of ${kind} backend commands`, async () => {
        const inner = kind === 'memory' ? new MemoryBackend({ maxEntries: 20_000 }) : new AsyncMemoryBackend();
        const recording = new RecordingBackend(inner);
        CacheModule.register(recording);
        const body = sinon.spy(async (id: number) => id * 2);
        class Orders {
          @Cached({ ttl: 600 })
          async total(id: number) {
            return body(id);
          }
        }
        const orders = new Orders();
        for (let id = 0; id < 10_000; id++) await orders.total(id);
        await orders.total(1); // a hit: the call site now knows this key without encoding it
        recording.reset();
        expect(await CacheModule.invalidate(Orders, 'total')).to.equal(true);
        expect(recording.calls.map((call) => call.operation)).to.deep.equal(['set']);
        body.resetHistory();
        expect(await orders.total(1)).to.equal(2);
        expect(await orders.total(9_999)).to.equal(19_998);
        expect(await orders.total(1)).to.equal(2);
        expect(body.callCount).to.equal(2);
      });
    }

    it('is seen at once by another process sharing the backend', async () => {
      const shared = new AsyncMemoryBackend();
      // Two registrations of one backend stand for two processes: each has its own call sites.
      CacheModule.register('a', shared);
      CacheModule.register('b', shared);
      let version = 1;
      const inA = cached(async (id: number) => `${id}@${version}`, { name: 'report', backend: 'a' });
      const inB = cached(async (id: number) => `${id}@${version}`, { name: 'report', backend: 'b' });
      expect(await inA(1)).to.equal('1@1');
      expect(await inB(1)).to.equal('1@1');
      version = 2;
      class Reports {
        static report = inA;
      }
      await CacheModule.invalidate(Reports, 'report');
      expect(await inA(1)).to.equal('1@2');
      expect(await inB(1)).to.equal('1@2');
    });

    it('refuses a method with a custom key, whose entries are not its alone', async () => {
      CacheModule.register(new MemoryBackend());
      class Users {
        @Cached({ key: (id: string) => `user:${id}` })
        async user(id: string) {
          return id;
        }
      }
      const error = await CacheModule.invalidate(Users, 'user').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(CacheConfigError);
      expect((error as Error).message)
        .to.contain('Users.user')
        .and.contain('custom');
    });

    it('configure({ version }) leaves every earlier entry behind at once', async () => {
      const memory = new MemoryBackend();
      CacheModule.register(memory);
      const body = sinon.spy(async () => 'shape');
      const f = cached(body, { name: 'shape' });
      await f();
      await f(); // a hit: the call site now knows this key without encoding it
      CacheModule.configure({ version: 2 });
      await f();
      await f();
      expect(body.callCount).to.equal(2);
      expect(memory.has('v2:shape:')).to.equal(true);
    });
  });

  describe('jitter', () => {
    it('spreads the stored ttl within ± the fraction', async () => {
      const recording = new RecordingBackend(new MemoryBackend());
      CacheModule.register(recording);
      const f = cached(async (id: number) => id, { name: 'jittered', ttl: 100, jitter: 0.1 });
      for (let id = 0; id < 200; id++) await f(id);
      const ttls = recording.calls.filter((call) => call.operation === 'set').map((call) => call.args[2] as number);
      expect(ttls).to.have.length(200);
      expect(Math.min(...ttls)).to.be.at.least(90);
      expect(Math.max(...ttls)).to.be.at.most(110);
      expect(new Set(ttls).size).to.be.greaterThan(150);
    });

    it('validates jitter and earlyRefresh', () => {
      expect(() => Cached({ jitter: 1 })).to.throw(TypeError, /jitter/);
      expect(() => Cached({ jitter: -0.1 })).to.throw(TypeError, /jitter/);
      expect(() => Cached({ earlyRefresh: 0 })).to.throw(TypeError, /earlyRefresh/);
      expect(() => Cached({ lockTtl: 0 })).to.throw(TypeError, /lockTtl/);
      expect(() => Cached({ lock: 'yes' as never })).to.throw(TypeError, /lock/);
    });
  });

  describe('earlyRefresh', () => {
    it('refreshes a hot key before it expires, once per expiry window, never missing', async () => {
      const clock = sinon.useFakeTimers({ now: 0 });
      CacheModule.register(new MemoryBackend());
      const misses: CacheEvent[] = [];
      CacheModule.on('miss', (event) => misses.push(event));
      const body = sinon.spy(async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return Date.now();
      });
      const hot = cached(body, { name: 'hot', ttl: 1, earlyRefresh: 3 });
      const first = hot();
      await clock.tickAsync(50);
      await first;
      const served = new Set<number>();
      for (let elapsed = 0; elapsed < 5_000; elapsed += 10) {
        await clock.tickAsync(10);
        served.add(await hot());
      }
      expect(misses).to.have.length(1);
      // 500 hits over five 1-second windows: a handful of refreshes, not one per hit, and every
      // refreshed value was served (no two refreshes raced for one window; the last may be pending).
      expect(body.callCount).to.be.within(5, 16);
      expect(served.size).to.be.at.least(body.callCount - 1);
    });
  });

  describe('lock', () => {
    it('lets one of two processes compute a cold key while the other waits for its value', async () => {
      const shared = new AsyncMemoryBackend();
      CacheModule.register('a', shared);
      CacheModule.register('b', shared);
      const body = sinon.spy(async (id: number) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return `value ${id}`;
      });
      const inA = cached(async (id: number) => body(id), { name: 'cold', backend: 'a', lock: true });
      const inB = cached(async (id: number) => body(id), { name: 'cold', backend: 'b', lock: true });
      expect(await Promise.all([inA(1), inB(1), inA(1), inB(1)])).to.deep.equal(Array(4).fill('value 1'));
      expect(body.callCount).to.equal(1);
      expect(await shared.memory.has('hoard:lock:cold:1')).to.equal(false);
    });

    it('is taken module-wide with configure({ lock: true }), and computes anyway when the lock fails', async () => {
      const shared = new AsyncMemoryBackend();
      CacheModule.register(shared);
      CacheModule.configure({ lock: true });
      const add = sinon.stub(shared, 'add').callThrough();
      add.withArgs(sinon.match(/^hoard:lock:/)).rejects(new Error('lock store down'));
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      const f = cached(async () => 'computed', { name: 'f' });
      expect(await f()).to.equal('computed');
      expect(operations).to.deep.equal(['lock']);
    });
  });
});
