import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, type Attributes, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { instrumentHoard, type HoardInstrumentationOptions } from 'hoard/otel';

/** A reader whose `collect()` the specs call when they want the figures: no export loop, no timer. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** The real OpenTelemetry SDK, in memory: spans kept by an InMemorySpanExporter, metrics read on demand. */
export interface Telemetry {
  readonly tracer: Tracer;
  spans(): ReadableSpan[];
  /** The data points of one metric, after a collection; [] when it recorded nothing. */
  points(name: string): Promise<DataPoint<unknown>[]>;
  /** The value of a counter or gauge's point whose attributes include `match`; 0 when there is none. */
  value(name: string, match?: Attributes): Promise<number>;
  /** The count of a histogram's point whose attributes include `match`. */
  histogramCount(name: string, match?: Attributes): Promise<number>;
}

/**
 * Inside a describe: before each test, a fresh SDK (tracer provider with an in-memory exporter,
 * meter provider with a collecting reader, the async-hooks context manager) and hoard
 * instrumented against it; after each, everything undone.
 */
export function useTelemetry(
  options: Omit<HoardInstrumentationOptions, 'tracerProvider' | 'meterProvider'> = {},
): () => Telemetry {
  let telemetry: Telemetry;
  let teardown: () => Promise<void>;
  beforeEach(() => {
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const reader = new CollectingReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const disable = instrumentHoard({ ...options, tracerProvider, meterProvider });
    const points = async (name: string): Promise<DataPoint<unknown>[]> => {
      const { resourceMetrics } = await reader.collect();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) if (metric.descriptor.name === name) return metric.dataPoints as DataPoint<unknown>[];
      }
      return [];
    };
    const find = async (name: string, match: Attributes) =>
      (await points(name)).find((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value));
    telemetry = {
      tracer: tracerProvider.getTracer('spec'),
      spans: () => exporter.getFinishedSpans(),
      points,
      value: async (name, match = {}) => ((await find(name, match))?.value as number | undefined) ?? 0,
      histogramCount: async (name, match = {}) => ((await find(name, match))?.value as Histogram | undefined)?.count ?? 0,
    };
    teardown = async () => {
      disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      context.disable();
    };
  });
  afterEach(() => teardown());
  return () => telemetry;
}

/**
 * A real node:http server whose handler runs `handle` inside a SERVER span, as an HTTP
 * instrumentation would; `get()` makes one request and resolves once the span has ended.
 */
export async function requestServer(
  tracer: Tracer,
  handle: () => Promise<unknown>,
): Promise<{ get(): Promise<string>; close(): Promise<void> }> {
  const server: Server = createServer((_request, response) => {
    tracer.startActiveSpan('GET /report', { kind: SpanKind.SERVER }, async (span) => {
      try {
        response.end(JSON.stringify(await handle()));
      } finally {
        span.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    get: async () => (await fetch(`http://127.0.0.1:${port}/report`)).text(),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The spans named `name`. */
export function named(spans: ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

/** The span's parent span id (sdk-trace-base 2.x keeps it in `parentSpanContext`). */
export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}
