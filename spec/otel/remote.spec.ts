import { expect } from 'chai';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { cached, CacheModule, MemcachedBackend, RedisBackend, type CacheEvent } from 'hoard';
import { sleep, tierOver, waitFor, type Tier } from '../backends/tiered/support.js';
import { startMemcached, startRedis, type ManagedServer, type RedisServer } from '../support/servers.js';
import { named, parentOf, useTelemetry, type Telemetry } from './support.js';

let run = 0;
const unique = (what: string) => `otel-${what}-${process.pid}-${++run}:`;

/** Calls `work` inside an active span named `job`, as a request handler would. */
function inJob<T>(telemetry: Telemetry, work: () => Promise<T>): Promise<T> {
  return telemetry.tracer.startActiveSpan('job', async (span) => {
    try {
      return await work();
    } finally {
      span.end();
    }
  });
}

/** The operation spans whose parent is `call`. */
function operationsUnder(spans: ReadableSpan[], call: ReadableSpan): ReadableSpan[] {
  return spans.filter((span) => span.kind === SpanKind.CLIENT && parentOf(span) === call.spanContext().spanId);
}

describe('hoard/otel on remote backends', function () {
  this.timeout(20_000);
  const telemetry = useTelemetry();

  describe('RedisBackend on a real redis-server', () => {
    let redis: RedisServer;
    let backend: RedisBackend;

    before(async () => {
      redis = await startRedis();
    });
    after(() => redis.stop());
    beforeEach(() => {
      CacheModule.reset();
      backend = new RedisBackend({ url: redis.url, prefix: unique('redis') });
      CacheModule.register(backend);
    });
    afterEach(() => backend.close());

    it('operation spans under the call spans, with the Redis database attributes, and their durations by operation', async () => {
      const t = telemetry();
      const price = cached(async (item: string) => item.length, { name: 'price' });
      await inJob(t, async () => {
        expect(await price('apple')).to.equal(5);
        expect(await price('apple')).to.equal(5);
      });
      const spans = t.spans();
      const calls = named(spans, 'hoard price');
      expect(calls.map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'hit']);
      const [missOps, hitOps] = calls.map((call) => operationsUnder(spans, call));
      expect(missOps!.map((span) => span.attributes['db.operation.name'])).to.include.members(['get', 'set']);
      expect(hitOps!.map((span) => span.attributes['db.operation.name'])).to.include('get');
      expect(hitOps!.map((span) => span.attributes['db.operation.name'])).not.to.include('set');
      for (const span of [...missOps!, ...hitOps!]) {
        expect(span.attributes).to.include({
          'db.system.name': 'redis',
          'server.address': '127.0.0.1',
          'server.port': redis.port,
          'hoard.backend': 'default',
        });
        expect(span.name).to.equal(`${String(span.attributes['db.operation.name'])} redis`);
      }
      // The set runs after the computation, under the call rather than under the computation span.
      const [compute] = named(spans, 'compute price');
      expect(parentOf(compute!)).to.equal(calls[0]!.spanContext().spanId);
      expect(
        await t.histogramCount('hoard.backend.operation.duration', { 'db.operation.name': 'set', 'db.system.name': 'redis' }),
      ).to.equal(1);
      expect(await t.value('hoard.calls', { 'hoard.method': 'price', 'hoard.result': 'hit' })).to.equal(1);
    });

    it('while the redis-server is killed: calls still return, fail_open calls, error spans with error.type, errors counted by kind', async () => {
      const t = telemetry();
      const faults: unknown[] = [];
      CacheModule.on('error', (event: CacheEvent) => faults.push(event.error));
      const price = cached(async (item: string) => item.length, { name: 'price' });
      await redis.kill();
      try {
        const answers = await inJob(t, async () => [await price('pear'), await price('pear')]);
        expect(answers).to.deep.equal([4, 4]);
      } finally {
        await redis.restart();
      }
      const spans = t.spans();
      const calls = named(spans, 'hoard price');
      expect(calls.map((span) => span.attributes['hoard.result'])).to.deep.equal(['fail_open', 'fail_open']);
      expect(calls.every((span) => span.status.code !== SpanStatusCode.ERROR)).to.equal(true);
      expect(faults.length).to.be.greaterThan(0);
      const fault = faults[0] as { code?: string; name: string };
      const kind = fault.code ?? fault.name;
      const failed = spans.filter((span) => span.kind === SpanKind.CLIENT && span.status.code === SpanStatusCode.ERROR);
      expect(failed.length).to.be.greaterThan(0);
      for (const span of failed) {
        expect(span.attributes['error.type']).to.equal(kind);
        expect(span.events.map((event) => event.name)).to.include('exception');
      }
      expect(calls[0]!.events.map((event) => event.name)).to.include('exception');
      expect(named(spans, 'compute price')).to.have.length(2);
      expect(
        await t.value('hoard.backend.errors', { 'error.type': kind, 'db.operation.name': 'get', 'hoard.backend': 'default' }),
      ).to.be.greaterThan(0);
      expect(await t.value('hoard.calls', { 'hoard.method': 'price', 'hoard.result': 'fail_open' })).to.equal(2);
    });

    it('lock: the call that finds the lock taken is lock_wait, and its wait that ends at lockTimeout is counted', async () => {
      const t = telemetry();
      const prefix = unique('lock');
      const backends = [new RedisBackend({ url: redis.url, prefix }), new RedisBackend({ url: redis.url, prefix })];
      CacheModule.register('a', backends[0]!);
      CacheModule.register('b', backends[1]!);
      let computed = 0;
      const slow = async () => {
        await sleep(300);
        return ++computed;
      };
      // Same name, so both processes' calls share one key and one lock.
      const a = cached(slow, { name: 'report', backend: 'a', lock: true, lockTimeout: 0.05 });
      const b = cached(slow, { name: 'report', backend: 'b', lock: true, lockTimeout: 0.05 });
      try {
        await inJob(t, () => Promise.all([a(), b()]));
      } finally {
        await Promise.all(backends.map((backend) => backend.close()));
      }
      expect(computed).to.equal(2);
      const results = named(t.spans(), 'hoard report').map((span) => span.attributes['hoard.result']);
      expect(results.sort()).to.deep.equal(['lock_wait', 'miss']);
      expect(await t.value('hoard.lock.waits', { 'hoard.method': 'report' })).to.equal(1);
      expect(await t.value('hoard.lock.timeouts', { 'hoard.method': 'report' })).to.equal(1);
    });
  });

  describe('MemcachedBackend on a real memcached', () => {
    let memcached: ManagedServer;
    let backend: MemcachedBackend;

    before(async () => {
      memcached = await startMemcached();
    });
    after(() => memcached.stop());
    beforeEach(() => {
      CacheModule.reset();
      backend = new MemcachedBackend({ servers: [memcached.address], prefix: unique('memcached') });
      CacheModule.register('sessions', backend);
    });
    afterEach(() => backend.close());

    it('operation spans with the Memcached database attributes under the calls', async () => {
      const t = telemetry();
      const session = cached(async (id: number) => ({ id }), { name: 'session', backend: 'sessions' });
      await inJob(t, async () => {
        await session(7);
        await session(7);
      });
      const spans = t.spans();
      const calls = named(spans, 'hoard session');
      expect(calls.map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'hit']);
      const operations = calls.flatMap((call) => operationsUnder(spans, call));
      expect(operations.map((span) => span.attributes['db.operation.name'])).to.include.members(['get', 'set']);
      for (const span of operations) {
        expect(span.attributes).to.include({
          'db.system.name': 'memcached',
          'server.address': '127.0.0.1',
          'server.port': memcached.port,
          'hoard.backend': 'sessions',
        });
      }
      expect(
        await t.histogramCount('hoard.backend.operation.duration', { 'db.system.name': 'memcached', 'db.operation.name': 'set' }),
      ).to.equal(1);
    });
  });

  describe('TieredBackend with a RedisBus', () => {
    let redis: RedisServer;
    let tiers: Tier[];

    before(async () => {
      redis = await startRedis();
    });
    after(() => redis.stop());
    beforeEach(async () => {
      CacheModule.reset();
      const shared = { prefix: unique('tiered'), channel: unique('bus') };
      tiers = [tierOver({ l2: redis.url }, shared), tierOver({ l2: redis.url }, shared)];
      CacheModule.register('a', tiers[0]!.tiered);
      CacheModule.register('b', tiers[1]!.tiered);
      await waitFor('both buses subscribed', () => tiers.every((tier) => tier.bus.connected), 5000);
    });
    afterEach(() => Promise.all(tiers.map((tier) => tier.tiered.close())));

    it('a hit names its tier; a write is a bus message sent and received, and drops the other L1 copy', async () => {
      const t = telemetry();
      let key = '';
      CacheModule.on('miss', (event) => (key = event.key));
      const fetchPrice = async (item: string) => item.length * 10;
      const inA = cached(fetchPrice, { name: 'price', backend: 'a' });
      const inB = cached(fetchPrice, { name: 'price', backend: 'b' });
      await inJob(t, async () => {
        await inA('fig'); // miss: computed in A, written to Redis
        await inA('fig'); // A's memory
        // B reads once A's bus messages reached it: one arriving during B's read keeps B from
        // copying what it read (a fill never outlives an invalidation), and B would read Redis again.
        const sent = await t.value('hoard.bus.messages', { 'hoard.backend': 'a', 'hoard.bus.direction': 'sent' });
        await waitFor(
          'B heard A',
          async () => (await t.value('hoard.bus.messages', { 'hoard.backend': 'b', 'hoard.bus.direction': 'received' })) === sent,
          5000,
        );
        await inB('fig'); // Redis, copied into B's memory
        await inB('fig'); // B's memory
      });
      const calls = named(t.spans(), 'hoard price');
      expect(
        calls.map((span) => [span.attributes['hoard.backend'], span.attributes['hoard.result'], span.attributes['hoard.tier']]),
      ).to.deep.equal([
        ['a', 'miss', undefined],
        ['a', 'hit', 'l1'],
        ['b', 'hit', 'l2'],
        ['b', 'hit', 'l1'],
      ]);
      expect(await t.value('hoard.calls', { 'hoard.backend': 'b', 'hoard.result': 'hit', 'hoard.tier': 'l2' })).to.equal(1);
      expect(await t.value('hoard.memory.entries', { 'hoard.backend': 'b', 'hoard.tier': 'l1' })).to.be.greaterThan(0);

      const sentBefore = await t.value('hoard.bus.messages', { 'hoard.backend': 'a', 'hoard.bus.direction': 'sent' });
      await tiers[0]!.tiered.delete(key);
      await waitFor('B heard A', async () => (await t.value('hoard.l1.dropped', { 'hoard.backend': 'b' })) === 1, 5000);
      expect(await t.value('hoard.bus.messages', { 'hoard.backend': 'a', 'hoard.bus.direction': 'sent' })).to.equal(
        sentBefore + 1,
      );
      expect(await t.value('hoard.bus.messages', { 'hoard.backend': 'b', 'hoard.bus.direction': 'received' })).to.be.greaterThan(
        0,
      );
    });
  });
});
