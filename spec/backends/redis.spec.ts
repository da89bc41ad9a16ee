import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import {
  Cached,
  CacheBackendError,
  CacheConfigError,
  CacheModule,
  CacheSerializationError,
  MISS,
  RedisBackend,
  type CacheEvent,
} from 'hoard';
import { runBackendConformance } from 'hoard/testing';
import { watchUnhandledRejections } from '../support/unhandled.js';
import { ask, startRedis, startRedisCluster, type RedisClusterServers, type RedisServer } from '../support/servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every key on one server (or node), for checking what the backend left behind. */
async function allKeys(client: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

describe('RedisBackend', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  /** A plain client for looking at the server behind the backend's back. */
  let raw: Redis;
  const backends: RedisBackend[] = [];

  function backend(options: ConstructorParameters<typeof RedisBackend>[0] = {}): RedisBackend {
    const made = new RedisBackend({ url: redis.url, prefix: 'app:', ...options });
    backends.push(made);
    return made;
  }

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    // The outage specs kill the server; this client just reconnects, without logging each attempt.
    raw.on('error', () => undefined);
  });
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((made) => made.close()));
    await raw.flushdb();
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  runBackendConformance('conformance on one server', ({ prefix }) => new RedisBackend({ url: redis.url, prefix }));

  describe('options', () => {
    it('refuses a timeout that is not a positive number of seconds', () => {
      for (const timeout of [0, -1, NaN, Infinity]) {
        expect(() => new RedisBackend({ url: redis.url, timeout })).to.throw(TypeError, /timeout/);
      }
    });

    it("refuses ioredis' keyPrefix, which would bypass the backend's prefix in clear()", () => {
      expect(() => new RedisBackend({ url: redis.url, keyPrefix: 'x:' } as never)).to.throw(TypeError, /prefix/);
      const client = new Redis(redis.url, { keyPrefix: 'x:', lazyConnect: true });
      expect(() => new RedisBackend({ client })).to.throw(TypeError, /keyPrefix/);
    });

    it('refuses a negative defaultTtl, a non-string prefix and a serializer without methods', () => {
      expect(() => new RedisBackend({ url: redis.url, defaultTtl: -1 })).to.throw(TypeError, /defaultTtl/);
      expect(() => new RedisBackend({ url: redis.url, prefix: 1 as never })).to.throw(TypeError, /prefix/);
      expect(() => new RedisBackend({ url: redis.url, serializer: {} as never })).to.throw(TypeError, /serializer/);
    });
  });

  describe('on the server', () => {
    it('stores under prefix + key, as JSON text other programs can read', async () => {
      await backend().set('user:1', { name: 'Ada' });
      expect(await raw.get('app:user:1')).to.equal('{"name":"Ada"}');
    });

    it('stores the TTL in milliseconds with the value (PTTL ≈ ttl)', async () => {
      const cache = backend({ defaultTtl: 20 });
      await cache.set('set', 1, 1.5);
      await cache.add('add', 1, 2.25);
      await cache.setMany({ many: 1 }, 3.5);
      await cache.set('default', 1);
      await cache.set('forever', 1, 0);
      await cache.increment('counter');
      const pttl = await Promise.all(
        ['set', 'add', 'many', 'default', 'forever', 'counter'].map((key) => raw.pttl(`app:${key}`)),
      );
      const expected = [1500, 2250, 3500, 20_000, -1, 20_000];
      pttl.forEach((ms, i) => {
        if (expected[i] === -1) expect(ms, 'ttl 0').to.equal(-1);
        else expect(ms).to.be.within(expected[i]! - 1000, expected[i]!);
      });
    });

    it('keeps the TTL of an existing counter and stores a decimal other programs can read', async () => {
      const cache = backend();
      await raw.set('app:visits', '5', 'PX', 60_000);
      expect(await cache.increment('visits', 2)).to.equal(7);
      expect(await raw.get('app:visits')).to.equal('7');
      expect(await raw.pttl('app:visits')).to.be.within(50_000, 60_000);
    });

    it('shares entries between instances on separate connections, as processes do', async () => {
      const one = backend();
      const two = backend();
      expect(one.client).to.not.equal(two.client);
      await one.set('shared', { from: 'one' }, 60);
      expect(await two.get('shared')).to.deep.equal({ from: 'one' });
      expect(await two.increment('count')).to.equal(1);
      expect(await one.increment('count')).to.equal(2);
      expect(await two.delete('shared')).to.equal(true);
      expect(await one.lookup('shared')).to.equal(MISS);
    });

    it('clear removes its own prefix only, glob characters in the prefix included, over many SCAN steps', async () => {
      const cache = backend({ prefix: 'a*[b]?\\:' });
      await cache.setMany(Array.from({ length: 2500 }, (_, i) => [`k${i}`, i] as const));
      // Keys the unescaped pattern `a*[b]?\:*` would also match, and plainly foreign ones.
      await raw.mset('aXbY\\:k1', 'foreign', 'a*[b]?\\', 'foreign', 'other:k1', 'foreign', 'a*b?\\:k1', 'foreign');
      await cache.clear();
      expect(await allKeys(raw)).to.deep.equal(['a*[b]?\\', 'a*b?\\:k1', 'aXbY\\:k1', 'other:k1'].sort());
    });

    it('refuses to clear without a prefix, and removes nothing', async () => {
      const cache = backend({ prefix: '' });
      await cache.set('k', 1);
      const error = await cache.clear().catch((caught: unknown) => caught);
      expect(error)
        .to.be.instanceOf(CacheConfigError)
        .with.property('message')
        .that.matches(/prefix/);
      expect(await allKeys(raw)).to.deep.equal(['k']);
    });

    it('rejects a value the serializer cannot encode, storing nothing of a setMany', async () => {
      const cache = backend();
      const error = await cache.set('f', () => 1).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheSerializationError);
      const many = await cache.setMany({ fine: 1, bad: Symbol('no') }).catch((caught: unknown) => caught);
      expect(many).to.be.instanceOf(CacheSerializationError);
      expect(await allKeys(raw)).to.deep.equal([]);
    });

    it('reports an entry it cannot decode as a serialization error naming nothing of the server', async () => {
      await raw.set('app:corrupt', '~{not json');
      const error = await backend()
        .get('corrupt')
        .catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheSerializationError);
    });

    /** How many times the server ran each command since the last `CONFIG RESETSTAT`. */
    async function commandCalls(): Promise<Record<string, number>> {
      const calls: Record<string, number> = {};
      for (const [, command, count] of (await raw.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
        calls[command!] = Number(count);
      }
      return calls;
    }

    it('sends the lookups of one tick as one MGET, each answered with its own entry', async () => {
      const cache = backend();
      await cache.setMany(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, { i }])));
      await raw.set('app:corrupt', '~{not json');
      await raw.config('RESETSTAT');
      const answers = await Promise.all([
        ...Array.from({ length: 50 }, (_, i) => cache.lookup(`k${i}`)),
        cache.lookup('absent'),
        cache.lookup('corrupt').catch((caught: unknown) => caught),
      ]);
      expect(answers.slice(0, 50)).to.deep.equal(Array.from({ length: 50 }, (_, i) => ({ i })));
      expect(answers[50]).to.equal(MISS);
      expect(answers[51]).to.be.instanceOf(CacheSerializationError);
      const calls = await commandCalls();
      expect(calls.mget).to.equal(1);
      expect(calls.get).to.equal(undefined);
    });

    it('sends the lookupWithTtl calls of one tick as one command, each answered with its own entry and TTL', async () => {
      const cache = backend();
      await cache.setMany(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, { i }])), 60);
      await cache.set('forever', 'kept', 0);
      await raw.set('app:corrupt', '~{not json');
      // The first read sends the script to the server; the batch below finds it there.
      expect(await cache.lookupWithTtl('absent')).to.equal(MISS);
      await raw.config('RESETSTAT');
      const answers = await Promise.all([
        ...Array.from({ length: 50 }, (_, i) => cache.lookupWithTtl(`k${i}`)),
        cache.lookupWithTtl('forever'),
        cache.lookupWithTtl('absent'),
        cache.lookupWithTtl('corrupt').catch((caught: unknown) => caught),
      ]);
      answers.slice(0, 50).forEach((answer, i) => {
        expect(answer).to.have.deep.property('value', { i });
        expect((answer as { ttl: number }).ttl).to.be.within(50, 60);
      });
      expect(answers[50]).to.deep.equal({ value: 'kept', ttl: 0 });
      expect(answers[51]).to.equal(MISS);
      expect(answers[52]).to.be.instanceOf(CacheSerializationError);
      const calls = await commandCalls();
      expect(calls.evalsha).to.equal(1);
      expect([calls.get, calls.mget, calls.eval]).to.deep.equal([undefined, 1, undefined], "the one MGET is the script's");
    });

    it('reads with TTL again after the server forgot its scripts', async () => {
      const cache = backend();
      await cache.set('k', 'v', 60);
      expect(await cache.lookupWithTtl('k')).to.have.property('value', 'v');
      await raw.script('FLUSH');
      expect(await cache.lookupWithTtl('k')).to.have.property('value', 'v');
    });

    it('reads a key holding another Redis type as a miss, which the next set replaces', async () => {
      const cache = backend();
      await raw.hset('app:h', 'field', 'value');
      expect(await cache.lookup('h')).to.equal(MISS);
      await cache.set('h', 'mine');
      expect(await cache.get('h')).to.equal('mine');
    });

    it('splits a tick of more than 1000 lookups over several MGETs', async () => {
      const cache = backend();
      await cache.set('k1499', 'last');
      await raw.config('RESETSTAT');
      const answers = await Promise.all(Array.from({ length: 1500 }, (_, i) => cache.get(`k${i}`)));
      expect(answers.filter((answer) => answer !== undefined)).to.deep.equal(['last']);
      expect((await commandCalls()).mget).to.equal(2);
    });

    it('keeps the order of the commands given in one tick: writes, deletes, then the lookups after them', async () => {
      const cache = backend();
      const given: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) given.push(cache.set(`k${i}`, i));
      for (let i = 0; i < 50; i++) given.push(cache.delete(`k${i}`));
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => cache.get(`k${i}`)));
      expect(answers).to.deep.equal(Array.from({ length: 100 }, (_, i) => (i < 50 ? undefined : i)));
      expect(await Promise.all(given)).to.deep.equal([...Array(100).fill(undefined), ...Array(50).fill(true)]);
    });

    it('answers a lookup asked right after a write with what was written, auto-pipelined client or not', async () => {
      for (const enableAutoPipelining of [false, true]) {
        const cache = backend({ enableAutoPipelining });
        await cache.set('k', 'old');
        const written = cache.set('k', 'new');
        expect(await cache.get('k')).to.equal('new');
        await written;
      }
    });

    it('with lock: true, processes sharing Redis compute a missing key once', async () => {
      // Two registrations over two connections stand for two processes: in-process single
      // flight is per registration, so only the lock in Redis can make them share one computation.
      CacheModule.reset();
      CacheModule.register('process-a', backend());
      CacheModule.register('process-b', backend());
      let runs = 0;
      const compute = async (): Promise<string> => {
        runs++;
        await sleep(100);
        return 'report';
      };
      class ProcessA {
        @Cached({ backend: 'process-a', key: 'report', lock: true, ttl: 60 })
        async report(): Promise<string> {
          return compute();
        }
      }
      class ProcessB {
        @Cached({ backend: 'process-b', key: 'report', lock: true, ttl: 60 })
        async report(): Promise<string> {
          return compute();
        }
      }
      try {
        const [a, b] = [new ProcessA(), new ProcessB()];
        const results = await Promise.all([a.report(), b.report(), a.report(), b.report()]);
        expect(results).to.deep.equal(['report', 'report', 'report', 'report']);
        expect(runs).to.equal(1);
        expect(await raw.exists('app:hoard:lock:report'), 'the lock is released').to.equal(0);
      } finally {
        CacheModule.reset();
      }
    });

    it('uses a ready client as is and leaves it open on close', async () => {
      const client = new Redis(redis.url);
      try {
        const cache = new RedisBackend({ client, prefix: 'app:' });
        await cache.set('k', 'v');
        await cache.close();
        expect(client.status).to.equal('ready');
        expect(await client.get('app:k')).to.equal('"v"');
      } finally {
        client.disconnect();
      }
    });

    it('closes the connection it made', async () => {
      const cache = backend();
      await cache.set('k', 'v');
      await cache.close();
      expect(cache.client.status).to.equal('end');
    });
  });

  describe('when Redis fails', () => {
    const errors: CacheEvent[] = [];
    const hits: CacheEvent[] = [];
    let unhandled: ReturnType<typeof watchUnhandledRejections>;
    let runs = 0;

    class Pricing {
      @Cached({ backend: 'shared', ttl: 60 })
      async price(item: number): Promise<{ item: number; price: number }> {
        runs++;
        await sleep(10);
        return { item, price: item * 3 };
      }
    }
    const pricing = new Pricing();

    /** 200 concurrent calls over 100 items (pairs share a key), each checked against its own item. */
    async function wave(from: number): Promise<void> {
      const items = Array.from({ length: 200 }, (_, i) => from + (i % 100));
      const results = await Promise.all(items.map((item) => pricing.price(item)));
      results.forEach((result, i) => expect(result).to.deep.equal({ item: items[i], price: items[i]! * 3 }));
    }

    /** Calls until one is served from Redis again; fails when that takes over 5 seconds. */
    async function expectHitsWithin5s(item: number): Promise<void> {
      const deadline = Date.now() + 5000;
      const hitsBefore = hits.length;
      while (hits.length === hitsBefore) {
        expect(Date.now(), 'no hit within 5 s of the server coming back').to.be.below(deadline);
        expect(await pricing.price(item)).to.deep.equal({ item, price: item * 3 });
        await sleep(50);
      }
      expect(hits.at(-1)).to.include({ backend: 'shared', method: 'Pricing.price' });
    }

    function expectReportedFaults(): void {
      expect(errors.length).to.be.greaterThan(0);
      for (const event of errors) {
        expect(event.backend).to.equal('shared');
        expect(event.method).to.equal('Pricing.price');
        expect(event.operation).to.be.oneOf(['get', 'set']);
        expect(event.key)
          .to.be.a('string')
          .and.match(/^Pricing\.price:/);
        expect(event.error).to.be.instanceOf(CacheBackendError).with.property('operation', event.operation);
      }
    }

    beforeEach(() => {
      CacheModule.reset();
      CacheModule.register('shared', backend({ timeout: 0.3 }));
      CacheModule.on('error', (event) => errors.push(event));
      CacheModule.on('hit', (event) => hits.push(event));
      errors.length = hits.length = runs = 0;
      unhandled = watchUnhandledRejections();
    });
    afterEach(async () => {
      unhandled.stop();
      redis.resume();
      const answers = await ask(redis.port, 'PING\r\n', (reply) => reply.includes('\r\n')).then(
        () => true,
        () => false,
      );
      if (!answers) await redis.restart();
      CacheModule.reset();
    });

    it('killed under 200 concurrent calls: every call gets its value, faults are events, caching resumes after a restart', async () => {
      await wave(0);
      const calls = wave(1000);
      await redis.kill();
      await calls;
      await wave(2000);
      expectReportedFaults();
      expect(errors.some((event) => event.operation === 'get')).to.equal(true);
      await redis.restart();
      await expectHitsWithin5s(7);
      expect(unhandled.reasons).to.deep.equal([]);
    });

    it('hung (SIGSTOP) under 200 concurrent calls: calls fail open after the timeout, caching resumes once it answers', async () => {
      await wave(0);
      const runsBefore = runs;
      await redis.pause();
      await wave(0);
      expect(runs - runsBefore, 'every item computed while the server hangs').to.equal(100);
      expectReportedFaults();
      redis.resume();
      await expectHitsWithin5s(7);
      expect(unhandled.reasons).to.deep.equal([]);
    });

    it('close while the server is down stops reconnecting, so the process can exit', async () => {
      const cache = backend({ timeout: 0.2 });
      await cache.set('k', 1);
      await redis.kill();
      expect(await cache.get('k').catch((caught: unknown) => caught)).to.be.instanceOf(CacheBackendError);
      await cache.close();
      await redis.restart();
      await sleep(1500); // past the longest reconnect delay
      expect(cache.client.status).to.not.equal('ready');
    });

    it("bounds every operation by timeout even on a client made without ioredis' commandTimeout", async () => {
      const client = new Redis(redis.url, { maxRetriesPerRequest: null });
      try {
        const cache = new RedisBackend({ client, prefix: 'app:', timeout: 0.2 });
        await cache.set('k', 1);
        await redis.pause();
        const error = await cache.get('k').catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(CacheBackendError).with.property('operation', 'get');
        expect((error as CacheBackendError).key).to.equal('k');
      } finally {
        redis.resume();
        client.disconnect();
      }
    });
  });
});

describe('RedisBackend on a Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: RedisClusterServers;
  /** One client for every backend: backends given a client never close it. */
  let client: Cluster;

  before(async () => {
    cluster = await startRedisCluster(3);
    client = new Cluster(cluster.startupNodes, { enableAutoPipelining: true });
  });
  after(async () => {
    client.disconnect();
    await cluster.stop();
  });

  runBackendConformance('conformance on a 3-master cluster', ({ prefix }) => new RedisBackend({ client, prefix }));

  it('spreads keys over every master and clear visits each of them', async () => {
    const cache = new RedisBackend({ client, prefix: 'app:' });
    await cache.setMany(Array.from({ length: 300 }, (_, i) => [`k${i}`, i] as const));
    await client.set('other:k1', 'foreign');
    expect(await cache.getMany(['k0', 'k150', 'k299', 'nope'])).to.deep.equal([0, 150, 299, undefined]);
    const masters = client.nodes('master');
    expect(masters).to.have.length(3);
    for (const node of masters) expect((await allKeys(node)).length, `keys on ${node.options.port}`).to.be.greaterThan(10);
    expect(await cache.deleteMany(['k0', 'k1', 'k2', 'nope'])).to.equal(3);
    await cache.clear();
    const left = (await Promise.all(masters.map(allKeys))).flat();
    expect(left).to.deep.equal(['other:k1']);
    await cache.close();
    expect(client.status).to.equal('ready');
  });
});
