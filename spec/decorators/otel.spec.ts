import 'reflect-metadata';
import { expect } from 'chai';
import { Cached, CacheModule, MemoryBackend } from 'hoard';
import { flavour } from '../support/flavour.js';
import { named, parentOf, requestServer, useTelemetry } from '../otel/support.js';

describe(`hoard/otel with @Cached [${flavour} decorators]`, () => {
  const telemetry = useTelemetry();

  beforeEach(() => {
    CacheModule.reset();
    CacheModule.register(new MemoryBackend());
  });

  it('names the call spans after Class.method under the HTTP request span, and counts them by result', async () => {
    const { tracer, spans, value } = telemetry();
    class Reports {
      @Cached({ ttl: 60 })
      async revenue(region: string) {
        return region.length * 1000;
      }

      @Cached()
      headcount(region: string) {
        return region.length;
      }
    }
    const reports = new Reports();
    const server = await requestServer(tracer, async () => [await reports.revenue('emea'), reports.headcount('emea')]);
    try {
      expect(await server.get()).to.equal('[4000,4]');
      expect(await server.get()).to.equal('[4000,4]');
    } finally {
      await server.close();
    }
    const requests = named(spans(), 'GET /report').map((span) => span.spanContext().spanId);
    for (const method of ['Reports.revenue', 'Reports.headcount']) {
      const calls = named(spans(), `hoard ${method}`);
      expect(calls.map((span) => span.attributes['hoard.result'])).to.deep.equal(['miss', 'hit']);
      expect(calls.map(parentOf)).to.deep.equal(requests);
      expect(named(spans(), `compute ${method}`).map(parentOf)).to.deep.equal([calls[0]!.spanContext().spanId]);
      expect(await value('hoard.calls', { 'hoard.method': method, 'hoard.result': 'hit' })).to.equal(1);
    }
  });
});
