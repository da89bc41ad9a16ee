import { expect } from 'chai';
import sinon from 'sinon';
import {
  Cached,
  CacheArgumentError,
  CacheConfigError,
  CacheModule,
  MemcachedBackend,
  MemoryBackend,
  MISS,
  RedisBackend,
  RedisBus,
  TieredBackend,
  type CacheBackend,
  type CacheEvent,
} from 'hoard';
import { flavour } from '../support/flavour.js';
import { startMemcached, startRedis, type ManagedServer, type RedisServer } from '../support/servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 2000; tries++) {
    if (await condition()) return;
    await sleep(10);
  }
  throw new Error(`never happened: ${what}`);
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

/** Where the source of truth lives: what a method returns when it runs, and how often it ran. */
class Source {
  version = 1;
  runs = 0;
  failing = false;
}

/**
 * The same class as two processes would load it: same name, so the same method label and keys,
 * cached on the backend registered as `backend`.
 */
function catalogOn(backend: string, source: Source, lock = false) {
  class Catalog {
    @Cached({ backend, ttl: 60, lock, tags: (sku: string) => [`sku:${sku}`] })
    async price(sku: string) {
      source.runs++;
      await sleep(5);
      if (source.failing) throw new Error('the price service is down');
      return `${sku}@v${source.version}`;
    }
  }
  return Catalog;
}

/** Two processes' views of one backend kind: for a remote kind, two backends over one server. */
interface Kind {
  readonly name: string;
  pair(prefix: string): [CacheBackend, CacheBackend];
}

describe(`soft invalidation: expire and expireTags [${flavour} decorators]`, function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let memcached: ManagedServer;
  let run = 0;
  const opened: CacheBackend[] = [];

  before(async () => {
    [redis, memcached] = await Promise.all([startRedis(), startMemcached()]);
  });
  after(() => Promise.all([redis.stop(), memcached.stop()]));

  const tier = (prefix: string) =>
    new TieredBackend({
      l1: new MemoryBackend(),
      l2: new RedisBackend({ url: redis.url, prefix }),
      bus: new RedisBus({ url: redis.url, channel: prefix }),
    });
  const kinds: Kind[] = [
    {
      name: 'memory',
      pair: () => {
        const memory = new MemoryBackend();
        return [memory, memory];
      },
    },
    {
      name: 'Redis',
      pair: (prefix) => [new RedisBackend({ url: redis.url, prefix }), new RedisBackend({ url: redis.url, prefix })],
    },
    {
      name: 'Memcached',
      pair: (prefix) => [
        new MemcachedBackend({ servers: [memcached.address], prefix }),
        new MemcachedBackend({ servers: [memcached.address], prefix }),
      ],
    },
    { name: 'tiered over Redis with a bus', pair: (prefix) => [tier(prefix), tier(prefix)] },
  ];

  afterEach(async () => {
    CacheModule.reset();
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });

  for (const kind of kinds) {
    describe(kind.name, () => {
      let source: Source;
      let errors: CacheEvent[];
      let a: CacheBackend;

      beforeEach(async () => {
        CacheModule.reset();
        const [first, second] = kind.pair(`soft${run++}:`);
        a = first;
        opened.push(...new Set([first, second]));
        CacheModule.register('a', first);
        CacheModule.register('b', second);
        source = new Source();
        errors = [];
        CacheModule.on('error', (event) => errors.push(event));
        if (first instanceof TieredBackend && second instanceof TieredBackend) {
          await eventually('both buses subscribed', () => Boolean(first.bus?.connected) && Boolean(second.bus?.connected));
        }
      });

      /** Process A stored two prices, then they changed at the source. */
      async function storedByA() {
        const CatalogA = catalogOn('a', source);
        const inA = new CatalogA();
        await inA.price('1');
        await inA.price('2');
        source.version = 2;
        return { CatalogA, inA, inB: new (catalogOn('b', source))() };
      }

      it('expireTags: the next caller gets the stale value at once, one refresh replaces it, then the fresh value is served', async () => {
        const { inA, inB } = await storedByA();
        await CacheModule.expireTags(['sku:1']);
        const [first, second] = await Promise.all([inB.price('1'), inB.price('1')]);
        expect([first, second]).to.deep.equal(['1@v1', '1@v1']);
        await eventually('the refresh stored the new value', async () => (await inB.price('1')) === '1@v2');
        expect(source.runs).to.equal(3);
        // A tiered process drops its memory copy when the bus tells it, a moment later.
        await eventually('the other process reads it', async () => (await inA.price('1')) === '1@v2');
        // The other tag's entry was neither expired nor recomputed.
        expect(await inB.price('2')).to.equal('2@v1');
        expect(source.runs).to.equal(3);
        expect(errors).to.deep.equal([]);
      });

      it("expire(Class, 'method'): every entry of the method is stale, in another process too", async () => {
        const { CatalogA, inB } = await storedByA();
        expect(await CacheModule.expire(CatalogA, 'price')).to.equal(true);
        expect(await inB.price('1')).to.equal('1@v1');
        expect(await inB.price('2')).to.equal('2@v1');
        await eventually('both refreshed', async () => (await inB.price('1')) === '1@v2' && (await inB.price('2')) === '2@v2');
        expect(source.runs).to.equal(4);
      });

      it("expire(Class, 'method', ...args): that entry alone is stale", async () => {
        const { CatalogA, inB } = await storedByA();
        expect(await CacheModule.expire(CatalogA, 'price', '1')).to.equal(true);
        expect(await CacheModule.expire(CatalogA, 'price', 'never stored')).to.equal(false);
        expect(await inB.price('1')).to.equal('1@v1');
        await eventually('the refresh stored the new value', async () => (await inB.price('1')) === '1@v2');
        expect(await inB.price('2')).to.equal('2@v1');
        expect(source.runs).to.equal(3);
      });

      it('a failing refresh keeps serving the stale value, reported as an error event, until the grace ends: then a miss', async () => {
        CacheModule.configure({ expireGrace: 1 });
        const inA = new (catalogOn('a', source))();
        await inA.price('1');
        source.failing = true;
        await CacheModule.expireTags(['sku:1']);
        expect(await inA.price('1')).to.equal('1@v1');
        await eventually('the failed refresh reported', () => errors.length > 0);
        expect(errors[0]).to.include({ operation: 'refresh', method: 'Catalog.price' });
        expect((errors[0]!.error as Error).message).to.equal('the price service is down');
        expect(await inA.price('1')).to.equal('1@v1');
        await sleep(1100);
        expect(await rejection(inA.price('1'))).to.have.property('message', 'the price service is down');
        source.failing = false;
        expect(await inA.price('1')).to.equal('1@v1');
      });

      it('invalidateTags after expireTags is a miss: the stale value is never served again', async () => {
        const inA = new (catalogOn('a', source))();
        await inA.price('1');
        source.failing = true;
        await CacheModule.expireTags(['sku:1']);
        await CacheModule.invalidateTags(['sku:1']);
        source.failing = false;
        source.version = 2;
        expect(await inA.price('1')).to.equal('1@v2');
      });

      it('a tag record lost after expireTags (an eviction) errs toward a miss, never toward the stale value', async () => {
        const inA = new (catalogOn('a', source))();
        await inA.price('1');
        await CacheModule.expireTags(['sku:1']);
        await a.delete('hoard:tag:sku:1');
        source.version = 2;
        expect(await inA.price('1')).to.equal('1@v2');
      });

      it('expiring twice before a refresh keeps serving the stale value, and entries stored since expire too', async () => {
        const CatalogA = catalogOn('a', source);
        const inA = new CatalogA();
        await inA.price('1');
        source.failing = true;
        await CacheModule.expireTags(['sku:1']);
        await CacheModule.expire(CatalogA, 'price');
        await CacheModule.expireTags(['sku:1']);
        expect(await inA.price('1')).to.equal('1@v1');
        source.failing = false;
        source.version = 2;
        await eventually('a refresh stored the new value', async () => (await inA.price('1')) === '1@v2');
      });
    });
  }

  it('with lock, one process refreshes: the other keeps serving the stale value meanwhile', async () => {
    const [first, second] = [
      new RedisBackend({ url: redis.url, prefix: 'soft-lock:' }),
      new RedisBackend({ url: redis.url, prefix: 'soft-lock:' }),
    ];
    opened.push(first, second);
    CacheModule.register('a', first);
    CacheModule.register('b', second);
    const source = new Source();
    const inA = new (catalogOn('a', source, true))();
    const inB = new (catalogOn('b', source, true))();
    await inA.price('1');
    source.version = 2;
    await CacheModule.expireTags(['sku:1']);
    expect(await Promise.all([inA.price('1'), inB.price('1')])).to.deep.equal(['1@v1', '1@v1']);
    await eventually('the refresh stored the new value', async () => (await inB.price('1')) === '1@v2');
    expect(source.runs).to.equal(2);
  });

  it('a read that began before a refresh stored its value and ends after it starts no second computation', async () => {
    const backend = new RedisBackend({ url: redis.url, prefix: 'soft-straddle:' });
    opened.push(backend);
    CacheModule.register(backend);
    let runs = 0;
    let computed!: () => void;
    const computing = new Promise<void>((resolve) => (computed = resolve));
    class Prices {
      @Cached({ ttl: 60 })
      async price(sku: string) {
        runs++;
        if (runs > 1) await computing;
        return `${sku}@v${runs}`;
      }
    }
    const prices = new Prices();
    expect(await prices.price('1')).to.equal('1@v1');
    expect(await CacheModule.expire(Prices, 'price', '1')).to.equal(true);
    expect(await prices.price('1')).to.equal('1@v1');
    await eventually('the refresh is computing', () => runs === 2);
    // The next lookup reads the stale entry at once, but answers only when released.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const lookup = backend.lookup.bind(backend);
    let read!: Promise<unknown>;
    const held = sinon.stub(backend, 'lookup').callsFake((key) => {
      held.restore();
      read = Promise.resolve(lookup(key));
      return released.then(() => read);
    });
    const straddling = prices.price('1');
    await read;
    const stores = sinon.spy(backend, 'set');
    computed();
    await eventually('the refresh stored its value', () => stores.called);
    await stores.firstCall.returnValue;
    stores.restore();
    const reads = sinon.spy(backend, 'lookup');
    release();
    expect(await straddling).to.equal('1@v1');
    await eventually('the late read started a refresh', () => reads.called || runs > 2);
    reads.restore();
    expect(await prices.price('1')).to.equal('1@v2');
    expect(runs).to.equal(2);
  });

  it("a memory backend's method expired before it was ever invalidated serves its untagged and tagged entries stale", async () => {
    CacheModule.register(new MemoryBackend());
    let version = 1;
    class Plain {
      @Cached()
      name(id: number) {
        return `${id}@v${version}`;
      }
      @Cached({ tags: ['names'] })
      tagged(id: number) {
        return `${id}@v${version}`;
      }
    }
    const plain = new Plain();
    expect(plain.name(1)).to.equal('1@v1');
    expect(plain.tagged(1)).to.equal('1@v1');
    version = 2;
    await CacheModule.expire(Plain, 'name');
    await CacheModule.expire(Plain, 'tagged');
    expect(plain.name(1)).to.equal('1@v1');
    expect(plain.tagged(1)).to.equal('1@v1');
    await eventually('refreshed', () => plain.name(1) === '1@v2' && plain.tagged(1) === '1@v2');
    await CacheModule.invalidate(Plain, 'name');
    version = 3;
    expect(plain.name(1)).to.equal('1@v3');
  });

  it('a tiered entry expired by its arguments keeps no longer than its own ttl, read from L2', async () => {
    const tiered = tier('soft-ttl:');
    opened.push(tiered);
    CacheModule.register('a', tiered);
    const CatalogA = catalogOn('a', new Source());
    await new CatalogA().price('1');
    expect(await CacheModule.expire(CatalogA, 'price', '1')).to.equal(true);
    const found = await tiered.lookupWithTtl!('Catalog.price:"1"');
    expect(found).to.not.equal(MISS);
    expect((found as { ttl: number }).ttl)
      .to.be.above(0)
      .and.at.most(60);
  });

  it('refuses what it cannot do, naming the call', async () => {
    CacheModule.register(new MemoryBackend());
    class Custom {
      @Cached({ key: (id: string) => `custom:${id}` })
      async load(id: string) {
        return id;
      }
    }
    expect(await rejection(CacheModule.expire(Custom, 'load')))
      .to.be.instanceOf(CacheConfigError)
      .with.property('message')
      .that.includes('CacheModule.expire: Custom.load has a custom `key`');
    expect(await rejection(CacheModule.expire(Custom, 'missing')))
      .to.be.instanceOf(CacheConfigError)
      .with.property('message')
      .that.includes('CacheModule.expire: Custom.missing is not decorated');
    expect(await rejection(CacheModule.expireTags('sku:1' as unknown as string[])))
      .to.be.instanceOf(CacheArgumentError)
      .with.property('message')
      .that.includes('CacheModule.expireTags');
    expect(() => CacheModule.configure({ expireGrace: -1 })).to.throw(TypeError, 'expireGrace');
    // A custom key's entry can still be expired by its arguments.
    await new Custom().load('1');
    expect(await CacheModule.expire(Custom, 'load', '1')).to.equal(true);
  });
});
