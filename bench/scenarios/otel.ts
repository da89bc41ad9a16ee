import { context, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { instrumentHoard } from 'hoard/otel';
import type { Budget } from '../harness.js';
import type { Section } from '../report.js';
import { floor, hoardMethod } from '../subjects/memory.js';
import { build, type Subject, type SubjectFactory } from '../subjects/subject.js';
import { Computation } from '../workload.js';
import { prewarm, throughputSection, timeHits } from './throughput.js';

/** Metrics are aggregated as the SDK does and never exported: the cost is recording, not shipping. */
class IdleReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const NO_SPAN = 'hoard @Cached + hoard/otel, no active span';
const UNDER_SPAN = 'hoard @Cached + hoard/otel, under a sampled span';

/** hoard's memory hit as above, the instrumentation enabled only while that subject is timed. */
function instrumented(name: string, inside?: Context): SubjectFactory {
  return {
    name,
    role: 'hoard',
    async create(computation, server) {
      const { lookup, close } = await hoardMethod.create(computation, server);
      return { lookup: inside === undefined ? lookup : (id, opts) => context.with(inside, () => lookup(id, opts)), close };
    },
  };
}

export async function memoryHitOtel(budget: Budget): Promise<Section> {
  const contextManager = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(contextManager);
  // Spans are recorded (the default sampler samples all) and dropped at their end: no processor.
  const tracerProvider = new BasicTracerProvider();
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const request = tracerProvider.getTracer('bench').startSpan('GET /report');
  const underRequest = trace.setSpan(context.active(), request);
  const factories = [floor, hoardMethod, instrumented(NO_SPAN), instrumented(UNDER_SPAN, underRequest)];
  const subjects = await Promise.all(factories.map((factory) => build(factory, new Computation(), undefined)));
  await prewarm(subjects);
  const around = (subject: Subject) =>
    subject.name === NO_SPAN || subject.name === UNDER_SPAN ? instrumentHoard({ tracerProvider, meterProvider }) : () => {};
  const measured = await timeHits(subjects, 1, budget, around);
  await Promise.all(subjects.map((subject) => subject.close()));
  request.end();
  await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
  context.disable();
  return throughputSection(
    'Memory hit with OpenTelemetry',
    'The memory hit above with `hoard/otel` enabled (the real SDK: a BasicTracerProvider that records spans and ' +
      'drops them, a MeterProvider whose reader never exports) while that subject is timed, and disabled for the ' +
      'others: "no active span" counts the call in metrics only; "under a sampled span" also records a call span ' +
      'per hit. Plain "hoard @Cached" runs with nothing subscribed, as hoard without `hoard/otel` always does.',
    measured,
    [],
  );
}
