import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  busChannel,
  callChannel,
  computeChannel,
  l1DroppedChannel,
  lockChannel,
  operationChannel,
  refreshChannel,
  staleChannel,
  type BusMessage,
  type CallMessage,
  type ComputeMessage,
  type L1DroppedMessage,
  type LockMessage,
  type OperationMessage,
  type RefreshMessage,
  type StaleMessage,
} from '../channels.js';
import { CacheArgumentError } from '../errors.js';
import type { CacheEvent } from '../module/events.js';
import { state } from '../module/state.js';
import { ATTR, errorType, type CallResult } from './attributes.js';
import { HoardMetrics, type CallSeries } from './metrics.js';

/** Options of {@link instrumentHoard}. */
export interface HoardInstrumentationOptions {
  /** Where spans go. Default: the global provider (`trace.getTracerProvider()`), read once, now. */
  tracerProvider?: TracerProvider;
  /** Where metrics go. Default: the global provider (`metrics.getMeterProvider()`), read once, now. */
  meterProvider?: MeterProvider;
  /**
   * Starts a call span even when no span is active. Default `false`: calls outside a traced
   * request (a warm-up, a timer) make no root spans, so a million hits make no million traces.
   * Metrics count every call either way.
   */
  rootSpans?: boolean;
  /**
   * Puts the hoard key on spans as `hoard.key`: it receives the key and returns what to record,
   * or `undefined` to leave it out (e.g. `(key) => key.replace(/"[^"]*@[^"]*"/g, '"<email>"')`).
   * Default: no key on any span. Keys never reach metrics.
   */
  keys?: (key: string) => string | undefined;
}

/** What a call, computation or operation keeps between its start and its end. */
interface Frame {
  readonly span: Span | undefined;
  /** The context its children start in: the span's, or its parent's when there is no span. */
  readonly context: Context;
  readonly start: number;
  readonly attributes: Attributes;
  /** Set on calls only: what answered them, as their events tell. */
  call?: CallState;
}

interface CallState {
  readonly series: CallSeries;
  result: CallResult | undefined;
  key: string | undefined;
  /** A tiered backend's shared tier was read during the call. */
  readL2: boolean;
  readonly tiered: boolean;
  ended: boolean;
}

const CALL_EVENTS = ['hit', 'miss', 'error'] as const;

/**
 * Turns on OpenTelemetry spans and metrics for every cached call, computation and remote
 * backend operation, by subscribing to the channels hoard publishes (nothing is paid until this
 * runs). Call it once, after the SDK (and its context manager) is registered. Returns a function
 * that unsubscribes again.
 */
export function instrumentHoard(options: HoardInstrumentationOptions = {}): () => void {
  return new HoardInstrumentation(options).disable;
}

class HoardInstrumentation {
  private readonly tracer: Tracer;
  private readonly metrics: HoardMetrics;
  private readonly rootSpans: boolean;
  private readonly keys: ((key: string) => string | undefined) | undefined;
  /** The call or computation under way, for the events published inside it. */
  private readonly frames = new AsyncLocalStorage<Frame>();
  /**
   * The context manager's own storage, when it is an AsyncLocalStorageContextManager: bound to
   * the start channels, it makes hoard's spans active while the method runs, so the method's own
   * spans (a database query) become children of the computation span.
   */
  private readonly contextStorage: AsyncLocalStorage<Context> | undefined;
  /** Where a message carries its frame between start and end (a property is cheaper than a WeakMap on every call). */
  private readonly frameKey = Symbol('hoard/otel frame');
  private readonly undo: (() => void)[] = [];

  constructor(options: HoardInstrumentationOptions) {
    const {
      tracerProvider = trace.getTracerProvider(),
      meterProvider = metrics.getMeterProvider(),
      rootSpans = false,
      keys,
    } = options;
    if (keys !== undefined && typeof keys !== 'function')
      throw new CacheArgumentError('instrumentHoard: `keys` must be a function (key) => string | undefined');
    this.tracer = tracerProvider.getTracer('hoard');
    this.metrics = new HoardMetrics(meterProvider.getMeter('hoard'));
    this.rootSpans = rootSpans;
    this.keys = keys;
    this.contextStorage = managerStorage();
    this.traceCalls();
    this.traceComputations();
    this.traceOperations();
    this.countEvents();
    this.undo.push(() => this.metrics.close());
  }

  readonly disable = (): void => {
    for (const step of this.undo.splice(0).reverse()) step();
  };

  private traceCalls(): void {
    const start = (message: CallMessage): Frame =>
      this.frameOf(message, () => {
        const registration = state.backends.get(message.backend);
        const tiered = registration !== undefined && 'l2' in registration.backend;
        const series = this.metrics.callsOf(message.method, message.backend);
        const frame = this.open(`hoard ${message.method}`, SpanKind.INTERNAL, series.attributes);
        frame.call = { series, result: undefined, key: undefined, readL2: false, tiered, ended: false };
        return frame;
      });
    const end = (message: CallMessage): void => {
      const frame = this.take(message);
      if (frame === undefined) return;
      const call = frame.call!;
      call.ended = true;
      const result = call.result ?? 'join';
      const served = call.tiered && (result === 'hit' || result === 'stale' || result === 'early_refresh');
      const attributes = call.series.count(result, served ? (call.readL2 ? 'l2' : 'l1') : undefined);
      const span = frame.span;
      if (span === undefined) return;
      span.setAttributes(attributes);
      const key = call.key === undefined ? undefined : this.keys?.(call.key);
      if (key !== undefined) span.setAttribute(ATTR.key, key);
      this.close(span, message);
    };
    this.bind(callChannel, start);
    this.subscribeEnd(callChannel, end);
  }

  private traceComputations(): void {
    const start = (message: ComputeMessage): Frame =>
      this.frameOf(message, () =>
        this.open(`compute ${message.method}`, SpanKind.INTERNAL, {
          [ATTR.method]: message.method,
          [ATTR.backend]: message.backend,
        }),
      );
    const end = (message: ComputeMessage): void => {
      const frame = this.take(message);
      if (frame === undefined) return;
      this.metrics.computationDuration.record(seconds(frame), withError(frame.attributes, message));
      if (frame.span !== undefined) this.close(frame.span, message);
    };
    this.bind(computeChannel, start);
    this.subscribeEnd(computeChannel, end);
  }

  private traceOperations(): void {
    const start = (message: OperationMessage): void => {
      const { operation, server, key } = message;
      const current = this.frames.getStore()?.call;
      if (current !== undefined && !current.ended && (operation === 'get' || operation === 'getMany')) current.readL2 = true;
      const attributes: Attributes = { [ATTR.dbOperation]: operation };
      const backend = registeredName(message.instance);
      if (backend !== undefined) attributes[ATTR.backend] = backend;
      if (server !== undefined) attributes[ATTR.dbSystem] = server.system;
      const frame = this.open(server === undefined ? operation : `${operation} ${server.system}`, SpanKind.CLIENT, attributes);
      if (frame.span !== undefined) {
        if (server?.address !== undefined) frame.span.setAttribute(ATTR.serverAddress, server.address);
        if (server?.port !== undefined) frame.span.setAttribute(ATTR.serverPort, server.port);
        const shown = key === undefined ? undefined : this.keys?.(key);
        if (shown !== undefined) frame.span.setAttribute(ATTR.key, shown);
      }
      (message as unknown as Record<symbol, Frame | undefined>)[this.frameKey] = frame;
    };
    const end = (message: OperationMessage): void => {
      const frame = this.take(message);
      if (frame === undefined) return;
      const attributes = withError(frame.attributes, message);
      this.metrics.operationDuration.record(seconds(frame), attributes);
      if ('error' in message) this.metrics.backendErrors.add(1, attributes);
      if (frame.span !== undefined) this.close(frame.span, message);
    };
    this.subscribe(operationChannel.start, start);
    this.subscribeEnd(operationChannel, end);
  }

  /** What happened inside a call (its result) and the counters that are not about one call. */
  private countEvents(): void {
    const current = (): Frame | undefined => {
      const frame = this.frames.getStore();
      return frame?.call === undefined || frame.call.ended ? undefined : frame;
    };
    for (const name of CALL_EVENTS) {
      this.subscribe(diagnostics.channel(`hoard:${name}`), (event: CacheEvent) => {
        const frame = current();
        if (frame === undefined) return;
        const call = frame.call!;
        if (name !== 'error') {
          call.result = name;
          call.key = event.key;
          return;
        }
        // A lookup that failed, and the method ran instead; other faults leave the result alone.
        if (event.operation === 'get') call.result = 'fail_open';
        frame.span?.recordException(event.error instanceof Error ? event.error : String(event.error));
      });
    }
    this.subscribe(staleChannel, (message: StaleMessage) => {
      this.metrics.staleServed.add(1, { [ATTR.method]: message.method, [ATTR.backend]: message.backend });
      const call = current()?.call;
      if (call !== undefined) call.result = 'stale';
    });
    this.subscribe(refreshChannel, (message: RefreshMessage) => {
      this.metrics.refreshes.add(1, {
        [ATTR.method]: message.method,
        [ATTR.backend]: message.backend,
        [ATTR.refreshKind]: message.kind,
      });
      const call = current()?.call;
      if (call !== undefined && message.kind === 'early' && call.result === 'hit') call.result = 'early_refresh';
    });
    this.subscribe(lockChannel, (message: LockMessage) => {
      const frame = current();
      const attributes = frame === undefined ? {} : frame.attributes;
      if (message.state === 'timeout') {
        this.metrics.lockTimeouts.add(1, attributes);
        return;
      }
      this.metrics.lockWaits.add(1, attributes);
      if (frame !== undefined) frame.call!.result = 'lock_wait';
    });
    this.subscribe(busChannel, (message: BusMessage) => {
      this.metrics.busMessages.add(1, { ...backendAttribute(message.instance), [ATTR.direction]: message.direction });
    });
    this.subscribe(l1DroppedChannel, (message: L1DroppedMessage) => {
      this.metrics.l1Dropped.add(message.copies, backendAttribute(message.instance));
    });
  }

  /** A frame and, under a parent span (or with `rootSpans`), its span. */
  private open(name: string, kind: SpanKind, attributes: Attributes): Frame {
    const parent = this.contextStorage !== undefined ? context.active() : (this.frames.getStore()?.context ?? context.active());
    const start = performance.now();
    if (!this.rootSpans && trace.getSpan(parent) === undefined) return { span: undefined, context: parent, start, attributes };
    const span = this.tracer.startSpan(name, { kind, attributes }, parent);
    return { span, context: trace.setSpan(parent, span), start, attributes };
  }

  private close(span: Span, message: { error?: unknown }): void {
    if ('error' in message) {
      const error = message.error;
      span.recordException(error instanceof Error ? error : String(error));
      span.setAttribute(ATTR.errorType, errorType(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }

  /**
   * The frame of a traced message, made once: every store bound to the start channel asks for it,
   * the first from outside all of them (runStores wraps the stores' runs one in another).
   */
  private frameOf(message: object, make: () => Frame): Frame {
    return ((message as Record<symbol, Frame | undefined>)[this.frameKey] ??= make());
  }

  /** The frame a message carried from its start, once: a second end (or one never started) finds none. */
  private take(message: object): Frame | undefined {
    const carrier = message as Record<symbol, Frame | undefined>;
    const frame = carrier[this.frameKey];
    carrier[this.frameKey] = undefined;
    return frame;
  }

  /** Makes the frame current (and its span active) while the traced work runs. */
  private bind<M extends object>(channel: diagnostics.TracingChannel<unknown, M>, start: (message: M) => Frame): void {
    const frames = this.frames;
    channel.start.bindStore(frames, (message) => start(message));
    this.undo.push(() => channel.start.unbindStore(frames));
    const storage = this.contextStorage;
    if (storage === undefined) return;
    channel.start.bindStore(storage, (message) => start(message).context);
    this.undo.push(() => channel.start.unbindStore(storage));
  }

  /** `end` settles synchronous work; work that returned a promise settles at `asyncEnd`. */
  private subscribeEnd<M extends object>(channel: diagnostics.TracingChannel<unknown, M>, end: (message: M) => void): void {
    this.subscribe(channel.end, (message: M) => {
      if ('result' in message || 'error' in message) end(message);
    });
    this.subscribe(channel.asyncEnd, end);
  }

  private subscribe<M>(channel: diagnostics.Channel, listener: (message: M) => void): void {
    const onMessage = (message: unknown): void => listener(message as M);
    channel.subscribe(onMessage);
    this.undo.push(() => channel.unsubscribe(onMessage));
  }
}

function seconds(frame: Frame): number {
  return (performance.now() - frame.start) / 1000;
}

function withError(attributes: Attributes, message: { error?: unknown }): Attributes {
  return 'error' in message ? { ...attributes, [ATTR.errorType]: errorType(message.error) } : attributes;
}

/** The name a backend instance is registered under, directly or as the shared tier of a tiered one. */
function registeredName(instance: object): string | undefined {
  for (const { name, backend } of state.backends.values()) {
    if (backend === instance || (backend as { l2?: unknown }).l2 === instance) return name;
  }
  return undefined;
}

function backendAttribute(instance: object): Attributes {
  const name = registeredName(instance);
  return name === undefined ? {} : { [ATTR.backend]: name };
}

/**
 * The AsyncLocalStorage behind the registered context manager, when it has one (OpenTelemetry's
 * AsyncLocalStorageContextManager, the Node SDK's default). The API offers no way to run a
 * function in a context from a channel subscriber, only this store.
 */
function managerStorage(): AsyncLocalStorage<Context> | undefined {
  const manager = (context as unknown as { _getContextManager?(): unknown })._getContextManager?.();
  const storage = (manager as { _asyncLocalStorage?: unknown } | undefined)?._asyncLocalStorage;
  return storage instanceof AsyncLocalStorage ? (storage as AsyncLocalStorage<Context>) : undefined;
}
