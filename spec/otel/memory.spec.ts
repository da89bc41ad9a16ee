import diagnostics from 'node:diagnostics_channel';
import { expect } from 'chai';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { cached, CacheArgumentError, CacheModule, MemoryBackend } from 'hoard';
import { instrumentHoard } from 'hoard/otel';
import { sleep } from '../backends/tiered/support.js';
import { named, parentOf, requestServer, useTelemetry } from './support.js';

describe('hoard/otel on a MemoryBackend', () => {
  beforeEach(() => {
    CacheModule.reset();
    CacheModule.register(new MemoryBackend());
  });

  describe('with nothing subscribed', () => {
    it('publishes nothing: no call, computation or operation channel has a subscriber until instrumentHoard, and none after disable', () => {
      const starts = ['call', 'compute', 'operation'].map((name) => diagnostics.channel(`tracing:hoard:${name}:start`));
      expect(starts.map((channel) => channel.hasSubscribers)).to.deep.equal([false, false, false]);
      const disable = instrumentHoard();
      expect(starts.map((channel) => channel.hasSubscribers)).to.deep.equal([true, true, true]);
      disable();
      expect(starts.map((channel) => channel.hasSubscribers)).to.deep.equal([false, false, false]);
      expect(diagnostics.channel('hoard:hit').hasSubscribers).to.equal(false);
    });

    it('refuses a `keys` sanitizer that is not a function, subscribing nothing', () => {
      expect(() => instrumentHoard({ keys: 'redact' as never }))
        .to.throw(CacheArgumentError, /instrumentHoard: `keys` must be a function/)
        .with.property('code', 'HOARD_ARGUMENT');
      expect(diagnostics.channel('tracing:hoard:call:start').hasSubscribers).to.equal(false);
    });
  });

  describe('spans', () => {
    const telemetry = useTelemetry();

    it('under an HTTP request span: a call span per call, a computation span under the miss, the method’s own span under that', async () => {
      const { tracer, spans } = telemetry();
      const report = cached(
        async (region: string) => {
          // What the method's own instrumented I/O would create: it must land under the computation span.
          tracer.startSpan('SELECT revenue').end();
          return `${region}: 42`;
        },
        { name: 'report' },
      );
      const server = await requestServer(tracer, () => report('emea'));
      try {
        expect(await server.get()).to.equal('"emea: 42"');
        expect(await server.get()).to.equal('"emea: 42"');
      } finally {
        await server.close();
      }
      const all = spans();
      const requests = named(all, 'GET /report');
      const calls = named(all, 'hoard report');
      const [compute] = named(all, 'compute report');
      const [query] = named(all, 'SELECT revenue');
      expect(requests).to.have.length(2);
      expect(calls).to.have.length(2);
      expect(calls.map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'hit']);
      expect(calls.map(parentOf)).to.deep.equal(requests.map((span) => span.spanContext().spanId));
      expect(calls[0]!.attributes).to.include({ 'hoard.method': 'report', 'hoard.backend': 'default' });
      expect(calls[0]!.kind).to.equal(SpanKind.INTERNAL);
      expect(parentOf(compute!)).to.equal(calls[0]!.spanContext().spanId);
      expect(parentOf(query!)).to.equal(compute!.spanContext().spanId);
      expect(named(all, 'compute report')).to.have.length(1);
      expect(all.every((span) => span.attributes['hoard.key'] === undefined)).to.equal(true);
    });

    it('makes no span for a call outside any span, and still counts it', async () => {
      const square = cached((x: number) => x * x, { name: 'square' });
      expect(square(3)).to.equal(9);
      expect(square(3)).to.equal(9);
      expect(telemetry().spans()).to.deep.equal([]);
      expect(await telemetry().value('hoard.calls', { 'hoard.method': 'square', 'hoard.result': 'hit' })).to.equal(1);
    });

    it('a synchronous method stays synchronous, and its spans nest under the active span', () => {
      const { tracer, spans } = telemetry();
      const square = cached((x: number) => x * x, { name: 'square' });
      const result = tracer.startActiveSpan('job', (span) => {
        const value = square(4);
        span.end();
        return value;
      });
      expect(result).to.equal(16);
      const [job] = named(spans(), 'job');
      const [call] = named(spans(), 'hoard square');
      expect(parentOf(call!)).to.equal(job!.spanContext().spanId);
      expect(call!.attributes['hoard.result']).to.equal('miss');
    });

    it('records a method that throws on the computation and the call span, with error.type', async () => {
      const { tracer, spans } = telemetry();
      class QuotaError extends Error {
        code = 'E_QUOTA';
      }
      const fetchQuota = cached(
        async (): Promise<number> => {
          throw new QuotaError('over quota');
        },
        { name: 'fetchQuota' },
      );
      await tracer.startActiveSpan('job', async (span) => {
        await fetchQuota().catch(() => undefined);
        span.end();
      });
      const [compute] = named(spans(), 'compute fetchQuota');
      const [call] = named(spans(), 'hoard fetchQuota');
      for (const span of [compute!, call!]) {
        expect(span.status.code).to.equal(SpanStatusCode.ERROR);
        expect(span.attributes['error.type']).to.equal('E_QUOTA');
        expect(span.events.map((event) => event.name)).to.include('exception');
      }
      expect(
        await telemetry().histogramCount('hoard.computation.duration', { 'hoard.method': 'fetchQuota', 'error.type': 'E_QUOTA' }),
      ).to.equal(1);
    });

    it('a call that joins a computation under way is `join`, with no computation span of its own', async () => {
      const { tracer, spans } = telemetry();
      const slow = cached(
        async (id: number) => {
          await sleep(5);
          return id;
        },
        { name: 'slow' },
      );
      await tracer.startActiveSpan('job', async (span) => {
        expect(await Promise.all([slow(1), slow(1)])).to.deep.equal([1, 1]);
        span.end();
      });
      expect(named(spans(), 'hoard slow').map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'join']);
      expect(named(spans(), 'compute slow')).to.have.length(1);
    });
  });

  describe('with rootSpans and a key sanitizer', () => {
    const telemetry = useTelemetry({ rootSpans: true, keys: (key) => key.replace(/"[^"]*@[^"]*"/g, '"<email>"') });

    it('starts call spans without a parent and records keys only as the sanitizer returns them', () => {
      const lookup = cached((email: string, page: number) => `${email}/${page}`, { name: 'lookup' });
      lookup('ada@example.com', 2);
      const [call] = named(telemetry().spans(), 'hoard lookup');
      expect(call!.parentSpanContext).to.equal(undefined);
      expect(call!.attributes['hoard.key']).to.equal('lookup:"<email>",2');
      expect(trace.getActiveSpan()).to.equal(undefined);
    });
  });

  describe('metrics', () => {
    const telemetry = useTelemetry();

    it('counts calls by result, times computations, and observes entries and evictions, never with the key', async () => {
      CacheModule.register(new MemoryBackend({ maxEntries: 2 }));
      const square = cached((x: number) => x * x, { name: 'square' });
      for (const x of [1, 1, 1, 2, 3]) square(x);
      const { value, histogramCount, points } = telemetry();
      expect(
        await value('hoard.calls', { 'hoard.method': 'square', 'hoard.backend': 'default', 'hoard.result': 'miss' }),
      ).to.equal(3);
      expect(await value('hoard.calls', { 'hoard.method': 'square', 'hoard.result': 'hit' })).to.equal(2);
      expect(await histogramCount('hoard.computation.duration', { 'hoard.method': 'square' })).to.equal(3);
      expect(await value('hoard.memory.entries', { 'hoard.backend': 'default' })).to.equal(2);
      expect(await value('hoard.memory.evictions', { 'hoard.backend': 'default' })).to.equal(1);
      const attributeNames = new Set((await points('hoard.calls')).flatMap((point) => Object.keys(point.attributes)));
      expect([...attributeNames].sort()).to.deep.equal(['hoard.backend', 'hoard.method', 'hoard.result']);
    });

    it('observes the bytes a MemoryBackend with maxBytes holds', async () => {
      const memory = new MemoryBackend({ maxBytes: 1_000_000 });
      CacheModule.register(memory);
      cached((name: string) => `hello ${name}`, { name: 'greet' })('ada');
      expect(memory.bytesHeld).to.be.greaterThan(0);
      expect(await telemetry().value('hoard.memory.bytes', { 'hoard.backend': 'default' })).to.equal(memory.bytesHeld);
    });

    it('stale values served, and refreshes started for stale and early entries, on the call and in counters', async () => {
      const { tracer, spans, value } = telemetry();
      let computed = 0;
      const stale = cached(async () => ++computed, { name: 'stale', ttl: 0.02, staleTtl: 60 });
      const early = cached(
        async () => {
          await sleep(2);
          return ++computed;
        },
        // A beta this large makes XFetch's draw refresh on every hit.
        { name: 'early', ttl: 60, earlyRefresh: 1e12 },
      );
      await tracer.startActiveSpan('job', async (span) => {
        await stale();
        await early();
        await sleep(30);
        await stale();
        await early();
        span.end();
      });
      expect(named(spans(), 'hoard stale').map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'stale']);
      expect(named(spans(), 'hoard early').map((span) => span.attributes['hoard.result'])).to.deep.equal([
        'miss',
        'early_refresh',
      ]);
      expect(await value('hoard.stale.served', { 'hoard.method': 'stale' })).to.equal(1);
      expect(await value('hoard.refreshes', { 'hoard.method': 'stale', 'hoard.refresh.kind': 'stale' })).to.equal(1);
      expect(await value('hoard.refreshes', { 'hoard.method': 'early', 'hoard.refresh.kind': 'early' })).to.equal(1);
    });
  });
});
