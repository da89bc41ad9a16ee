import 'reflect-metadata';
import { expect } from 'chai';
import sinon from 'sinon';
import {
  Cached,
  cached,
  CacheConfigError,
  CacheKeyError,
  CacheSerializationError,
  CacheModule,
  MemoryBackend,
  NullBackend,
  type CacheEvent,
} from 'hoard';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { flavour } from '../support/flavour.js';
import { useFreshMemoryModule } from '../support/fresh-module.js';

describe(`@Cached [${flavour} decorators]`, () => {
  const memory = useFreshMemoryModule();

  describe('hits and misses', () => {
    it('runs the body once and serves later calls with the same arguments from the cache', async () => {
      const body = sinon.spy(async (region: string, year: number) => `${region}-${year}`);
      class Reports {
        @Cached({ ttl: 60 })
        async calculateValue(region: string, year: number) {
          return body(region, year);
        }
      }
      const reports = new Reports();
      expect(await reports.calculateValue('eu', 2024)).to.equal('eu-2024');
      expect(await reports.calculateValue('eu', 2024)).to.equal('eu-2024');
      expect(await reports.calculateValue('us', 2024)).to.equal('us-2024');
      expect(body.callCount).to.equal(2);
    });

    it('caches null and undefined results like any other value', async () => {
      const body = sinon.spy((id: number) => (id === 1 ? null : undefined));
      class Lookup {
        @Cached()
        async find(id: number) {
          return body(id);
        }
      }
      const lookup = new Lookup();
      expect(await lookup.find(1)).to.equal(null);
      expect(await lookup.find(1)).to.equal(null);
      expect(await lookup.find(2)).to.equal(undefined);
      expect(await lookup.find(2)).to.equal(undefined);
      expect(body.callCount).to.equal(2);
    });

    it('never caches a thrown error or a rejection, and passes the same error on', async () => {
      const failure = new Error('database down');
      const body = sinon.stub();
      body.onFirstCall().rejects(failure).onSecondCall().resolves(42);
      class Service {
        @Cached()
        async load(id: number): Promise<number> {
          return body(id);
        }
      }
      const service = new Service();
      const rejection = await service.load(1).catch((error: unknown) => error);
      expect(rejection).to.equal(failure);
      expect(await service.load(1)).to.equal(42);
      expect(await service.load(1)).to.equal(42);
      expect(body.callCount).to.equal(2);

      const sync = sinon.stub().onFirstCall().throws(failure).onSecondCall().returns(7);
      class Sync {
        @Cached()
        compute(x: number): number {
          return sync(x);
        }
      }
      expect(() => new Sync().compute(1)).to.throw(failure);
      expect(new Sync().compute(1)).to.equal(7);
    });

    it('shares the cache between instances: `this` is not part of the key', async () => {
      const body = sinon.spy(async (id: number) => id * 2);
      class Users {
        @Cached()
        async user(id: number) {
          return body(id);
        }
      }
      await new Users().user(3);
      expect(await new Users().user(3)).to.equal(6);
      expect(body.callCount).to.equal(1);
    });

    it('expires entries after ttl seconds (fake timers)', async () => {
      const clock = sinon.useFakeTimers({ now: 1_000_000 });
      const body = sinon.spy(async () => Date.now());
      class Clocked {
        @Cached({ ttl: 1.5 })
        async now() {
          return body();
        }
      }
      const clocked = new Clocked();
      expect(await clocked.now()).to.equal(1_000_000);
      clock.tick(1_499);
      expect(await clocked.now()).to.equal(1_000_000);
      clock.tick(1);
      expect(await clocked.now()).to.equal(1_001_500);
      expect(body.callCount).to.equal(2);
    });

    it('uses the configured defaultTtl when the decorator gives none, and ttl 0 never expires', async () => {
      const clock = sinon.useFakeTimers({ now: 0 });
      CacheModule.configure({ defaultTtl: 10 });
      const shortBody = sinon.spy(async () => 1);
      const foreverBody = sinon.spy(async () => 2);
      class Defaults {
        @Cached()
        async short() {
          return shortBody();
        }
        @Cached({ ttl: 0 })
        async forever() {
          return foreverBody();
        }
      }
      const d = new Defaults();
      await d.short();
      await d.forever();
      clock.tick(10_000);
      await d.short();
      clock.tick(365 * 24 * 3600 * 1000);
      await d.forever();
      expect(shortBody.callCount).to.equal(2);
      expect(foreverBody.callCount).to.equal(1);
    });
  });

  describe('single flight', () => {
    it('lets concurrent calls with the same key share one invocation and its value', async () => {
      let release!: (value: string) => void;
      const body = sinon.spy(() => new Promise<string>((resolve) => (release = resolve)));
      class Slow {
        @Cached()
        async fetch(id: number) {
          return body();
        }
      }
      const slow = new Slow();
      const calls = Array.from({ length: 50 }, () => slow.fetch(1));
      release('done');
      expect(await Promise.all(calls)).to.deep.equal(Array(50).fill('done'));
      expect(body.callCount).to.equal(1);
    });

    it('gives every waiter the same error, and the next call runs again', async () => {
      const failure = new Error('boom');
      const body = sinon.stub().rejects(failure);
      class Failing {
        @Cached()
        async fetch() {
          return body();
        }
      }
      const failing = new Failing();
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => failing.fetch()));
      expect(results.map((r) => (r as PromiseRejectedResult).reason)).to.deep.equal(Array(5).fill(failure));
      expect(body.callCount).to.equal(1);
      await failing.fetch().catch(() => undefined);
      expect(body.callCount).to.equal(2);
    });

    it('shares one computation and one backend write on an asynchronous backend', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      const lookups = sinon.spy(remote, 'lookup');
      const writes = sinon.spy(remote, 'set');
      const body = sinon.spy(async (id: number) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { id };
      });
      class Cold {
        @Cached({ backend: 'remote' })
        async load(id: number) {
          return body(id);
        }
      }
      const cold = new Cold();
      const values = await Promise.all(Array.from({ length: 1000 }, () => cold.load(9)));
      expect(values.every((v) => v.id === 9)).to.equal(true);
      expect(body.callCount).to.equal(1);
      expect(writes.callCount).to.equal(1);
      // The entry and the method's generation record, read together.
      expect(lookups.args.map(([key]) => key)).to.deep.equal(['Cold.load:9', 'hoard:gen:Cold.load']);
    });
  });

  describe('synchronous and asynchronous methods', () => {
    it('keeps a synchronous method synchronous on a memory backend, hit and miss', () => {
      class Sync {
        @Cached()
        square(x: number): number {
          return x * x;
        }
      }
      const sync = new Sync();
      expect(sync.square(4)).to.equal(16);
      expect(sync.square(4)).to.equal(16);
    });

    it('returns a Promise on a hit exactly when the method is async or returned promises', async () => {
      class Mixed {
        @Cached()
        async declared(x: number) {
          return x;
        }
        @Cached()
        promising(x: number): Promise<number> {
          return Promise.resolve(x);
        }
      }
      const mixed = new Mixed();
      await mixed.declared(1);
      expect(mixed.declared(1)).to.be.instanceOf(Promise);
      await mixed.promising(1);
      const hit = mixed.promising(1);
      expect(hit).to.be.instanceOf(Promise);
      expect(await hit).to.equal(1);
    });

    it('refuses a synchronous method on an asynchronous backend with a CacheConfigError, without running it', () => {
      CacheModule.register('remote', new AsyncMemoryBackend());
      const body = sinon.spy((x: number) => x);
      class Sync {
        @Cached({ backend: 'remote' })
        compute(x: number): number {
          return body(x);
        }
      }
      expect(() => new Sync().compute(1))
        .to.throw(CacheConfigError)
        .with.property('message')
        .that.matches(/Sync\.compute.*remote.*async/);
      expect(body.called).to.equal(false);
    });

    if (flavour === 'legacy') {
      it('counts a method typed as returning a Promise as async with emitDecoratorMetadata', async () => {
        CacheModule.register('remote', new AsyncMemoryBackend());
        const body = sinon.spy((x: number) => Promise.resolve(x + 1));
        class Typed {
          @Cached({ backend: 'remote' })
          next(x: number): Promise<number> {
            return body(x);
          }
        }
        expect(await new Typed().next(1)).to.equal(2);
        expect(await new Typed().next(1)).to.equal(2);
        expect(body.callCount).to.equal(1);
      });
    }
  });

  describe('options', () => {
    it('rejects invalid options when the decorator is applied', () => {
      expect(() => Cached({ ttl: -1 })).to.throw(TypeError, /ttl/);
      expect(() => Cached({ ttl: Number.NaN })).to.throw(TypeError, /ttl/);
      expect(() => Cached({ staleTtl: -5 })).to.throw(TypeError, /staleTtl/);
      expect(() => Cached({ key: 42 as unknown as string })).to.throw(TypeError, /key/);
      expect(() => Cached({ tags: [1] as unknown as string[] })).to.throw(TypeError, /tags/);
      expect(() => Cached({ condition: 'yes' as unknown as () => boolean })).to.throw(TypeError, /condition/);
    });

    it('refuses a ttl no backend can store when the decorator is applied, and on a backend write', () => {
      for (const option of ['ttl', 'staleTtl']) {
        expect(() => Cached({ [option]: 1e16 })).to.throw(TypeError, new RegExp(`${option}.*2147483647`));
        expect(() => Cached({ [option]: 2 ** 31 })).to.throw(TypeError, new RegExp(option));
        expect(() => cached(async () => 1, { name: 'f', [option]: Infinity })).to.throw(TypeError, new RegExp(option));
      }
      expect(() => Cached({ ttl: 2 ** 31 - 1 })).not.to.throw();
      expect(() => CacheModule.configure({ defaultTtl: 1e16 })).to.throw(TypeError, /defaultTtl/);
      expect(() => new MemoryBackend().set('k', 1, 1e16)).to.throw(TypeError, /ttl/);
    });

    it('rejects an argument nested too deeply with a CacheKeyError naming the method and argument, the body not run', async () => {
      const body = sinon.spy(async (_label: string, tree: unknown) => tree);
      class Trees {
        @Cached()
        async depth(label: string, tree: unknown) {
          return body(label, tree);
        }
      }
      let tree: unknown = 'leaf';
      for (let level = 0; level < 5_000; level++) tree = [tree];
      const error = await new Trees().depth('deep', tree).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheKeyError);
      expect(error).to.include({ method: 'Trees.depth', argumentIndex: 1 });
      expect(body.called).to.equal(false);
    });

    it('caches only when `condition` holds, and does not store when `unless` holds', async () => {
      const body = sinon.spy(async (id: number) => (id < 0 ? 'negative' : `user ${id}`));
      class Users {
        @Cached({ condition: (id: number) => id !== 0, unless: (result: string) => result === 'negative' })
        async user(id: number) {
          return body(id);
        }
      }
      const users = new Users();
      for (const id of [0, 0, -1, -1, 5, 5]) await users.user(id);
      expect(body.args.map(([id]) => id)).to.deep.equal([0, 0, -1, -1, 5]);
    });

    it('uses a custom key as given, shared by methods that produce the same key', async () => {
      class Profiles {
        @Cached({ key: (id: string) => `user:${id}` })
        async byId(id: string) {
          return { id, via: 'byId' };
        }
        @Cached({ key: (id: string) => `user:${id}` })
        async alsoById(id: string) {
          return { id, via: 'alsoById' };
        }
      }
      const profiles = new Profiles();
      await profiles.byId('7');
      expect(await profiles.alsoById('7')).to.deep.equal({ id: '7', via: 'byId' });
      expect(memory().has('user:7')).to.equal(true);
    });

    it('calls key, condition and unless with `this` bound to the instance', async () => {
      class Tenant {
        constructor(readonly tenant: string) {}
        @Cached({
          key(this: Tenant, id: string) {
            return `${this.tenant}:${id}`;
          },
          condition(this: Tenant) {
            return this.tenant !== 'nocache';
          },
        })
        async item(id: string) {
          return `${this.tenant}/${id}`;
        }
      }
      await new Tenant('acme').item('1');
      await new Tenant('nocache').item('1');
      expect(memory().get('acme:1')).to.equal('acme/1');
      expect(memory().has('nocache:1')).to.equal(false);
    });

    it('prefixes keys with keyPrefix and namespace, custom keys included', async () => {
      CacheModule.configure({ keyPrefix: 'app:' });
      class Catalog {
        @Cached({ namespace: 'v2' })
        async product(id: number) {
          return id;
        }
        @Cached({ namespace: 'v2', key: 'all' })
        async all() {
          return [];
        }
      }
      await new Catalog().product(1);
      await new Catalog().all();
      expect(memory().has('app:v2:Catalog.product:1')).to.equal(true);
      expect(memory().has('app:v2:all')).to.equal(true);
    });

    it('names the declaring class in keys, for static and inherited methods too', async () => {
      class Base {
        @Cached()
        async inherited(x: number) {
          return x;
        }
        @Cached()
        static async make(x: number) {
          return x;
        }
      }
      class Derived extends Base {}
      await new Derived().inherited(1);
      await Base.make(2);
      expect(memory().has('Base.inherited:1')).to.equal(true);
      expect(memory().has('Base.make:2')).to.equal(true);
    });

    it('keeps the method name and arity', () => {
      class Named {
        @Cached()
        async lookUp(a: number, b: number) {
          return a + b;
        }
      }
      expect(Named.prototype.lookUp.name).to.equal('lookUp');
      expect(Named.prototype.lookUp.length).to.equal(2);
    });
  });

  describe('the backend registry', () => {
    it('resolves the backend when called, so classes may load before register', async () => {
      CacheModule.reset();
      class Early {
        @Cached({ backend: 'late' })
        async value() {
          return 1;
        }
      }
      const late = new MemoryBackend();
      CacheModule.register('late', late);
      expect(await new Early().value()).to.equal(1);
      expect(late.has('Early.value:')).to.equal(true);
    });

    it('rejects with a CacheConfigError naming Class.method and the backend when none is registered', async () => {
      CacheModule.reset();
      const body = sinon.spy();
      class Orphan {
        @Cached({ backend: 'shared' })
        async get() {
          body();
        }
        @Cached()
        compute() {
          body();
        }
      }
      const error = await new Orphan().get().catch((e: unknown) => e);
      expect(error).to.be.instanceOf(CacheConfigError);
      expect((error as Error).message)
        .to.contain('Orphan.get')
        .and.contain("'shared'");
      expect(() => new Orphan().compute()).to.throw(CacheConfigError, /Orphan\.compute.*'default'/);
      expect(body.called).to.equal(false);
    });

    it('uses the replacement when a name is registered again', async () => {
      class Counter {
        @Cached()
        async one() {
          return 1;
        }
      }
      await new Counter().one();
      const replacement = new MemoryBackend();
      CacheModule.register(replacement);
      await new Counter().one();
      expect(replacement.has('Counter.one:')).to.equal(true);
      expect(CacheModule.get()).to.equal(replacement);
    });

    it('caches nothing on a NullBackend', async () => {
      CacheModule.register(new NullBackend());
      const body = sinon.spy(async () => 1);
      class Uncached {
        @Cached()
        async one() {
          return body();
        }
      }
      await new Uncached().one();
      await new Uncached().one();
      expect(body.callCount).to.equal(2);
    });
  });

  describe('faults on the backend', () => {
    it('runs the method when the backend fails, returns its value and reports an error event', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      const failure = new Error('connection refused');
      sinon.stub(remote, 'lookup').rejects(failure);
      const writes = sinon.spy(remote, 'set');
      const events: CacheEvent[] = [];
      CacheModule.on('error', (event) => events.push(event));
      class Resilient {
        @Cached({ backend: 'remote' })
        async value(id: number) {
          return id + 1;
        }
      }
      expect(await new Resilient().value(1)).to.equal(2);
      expect(writes.called).to.equal(false);
      expect(events).to.deep.equal([
        { backend: 'remote', key: 'Resilient.value:1', method: 'Resilient.value', operation: 'get', error: failure },
      ]);
      expect(CacheModule.stats().backends.remote!.errors).to.equal(1);
    });

    it('treats an entry it cannot read as a miss and replaces it', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      const lookup = sinon.stub(remote, 'lookup').callThrough();
      lookup.withArgs('Healing.value:').onFirstCall().rejects(new CacheSerializationError('not hoard data'));
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      let runs = 0;
      class Healing {
        @Cached({ backend: 'remote' })
        async value() {
          runs++;
          return 'fresh';
        }
      }
      expect(await new Healing().value()).to.equal('fresh');
      expect(await new Healing().value()).to.equal('fresh');
      expect(runs).to.equal(1);
      expect(operations).to.deep.equal(['get']);
    });

    it('reports one fault when the backend cannot answer for the entry and its generation, and runs the method', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      sinon.stub(remote, 'lookup').rejects(new Error('timed out'));
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      class Dead {
        @Cached({ backend: 'remote' })
        async value(id: number) {
          return id;
        }
      }
      expect(await new Dead().value(3)).to.equal(3);
      expect(operations).to.deep.equal(['get']);
    });

    it('returns the value when storing fails, and reports it', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      sinon.stub(remote, 'set').rejects(new Error('too large'));
      const operations: (string | undefined)[] = [];
      CacheModule.on('error', (event) => operations.push(event.operation));
      class Big {
        @Cached({ backend: 'remote' })
        async blob() {
          return 'x'.repeat(10);
        }
      }
      expect(await new Big().blob()).to.equal('xxxxxxxxxx');
      expect(operations).to.deep.equal(['set']);
    });
  });
});
