import type { Attributes, BatchObservableCallback, Counter, Histogram, Meter, Observable } from '@opentelemetry/api';
import type { CacheBackend } from '../backends/backend.js';
import type { MemoryBackend } from '../backends/memory.js';
import { state } from '../module/state.js';
import { ATTR } from './attributes.js';

/**
 * Bucket bounds (seconds) for both duration histograms: a memory computation takes microseconds,
 * a remote operation a fraction of a millisecond on loopback, a slow method seconds. The SDK's
 * default bounds (0, 5, 10, 25, … 10 000) are meant for milliseconds and would put all of them
 * in the first bucket.
 */
const SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One count of `hoard.calls`: its attributes, made once, and the calls counted under them. */
interface Count {
  readonly attributes: Attributes;
  value: number;
}

/** The calls of one method on one backend: the attributes its spans share, and a count per result (and tier). */
export class CallSeries {
  readonly attributes: Attributes;
  private readonly counts = new Map<string, Count>();

  constructor(method: string, backend: string) {
    this.attributes = { [ATTR.method]: method, [ATTR.backend]: backend };
  }

  /** Counts one call; returns the call's attributes. */
  count(result: string, tier: string | undefined): Attributes {
    const id = tier === undefined ? result : `${result} ${tier}`;
    let count = this.counts.get(id);
    if (count === undefined) {
      const attributes: Attributes = { ...this.attributes, [ATTR.result]: result };
      if (tier !== undefined) attributes[ATTR.tier] = tier;
      count = { attributes, value: 0 };
      this.counts.set(id, count);
    }
    count.value++;
    return count.attributes;
  }

  values(): IterableIterator<Count> {
    return this.counts.values();
  }
}

/** Every instrument of docs/observability.md's metric table. */
export class HoardMetrics {
  readonly computationDuration: Histogram;
  readonly operationDuration: Histogram;
  readonly backendErrors: Counter;
  readonly staleServed: Counter;
  readonly refreshes: Counter;
  readonly lockWaits: Counter;
  readonly lockTimeouts: Counter;
  readonly busMessages: Counter;
  readonly l1Dropped: Counter;
  private readonly observed: Observable[];
  private readonly observe: BatchObservableCallback;
  private readonly series = new Map<string, CallSeries>();

  constructor(private readonly meter: Meter) {
    // Counted in CallSeries and reported at collection: a hit then costs a Map lookup and an
    // increment, where Counter.add would have the SDK hash the attributes on every call.
    const calls = meter.createObservableCounter('hoard.calls', {
      unit: '{call}',
      description: 'Calls of cached methods, by result.',
    });
    this.computationDuration = meter.createHistogram('hoard.computation.duration', {
      unit: 's',
      description: 'How long a cached method body ran (on a miss, a fail-open or a refresh).',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
    this.operationDuration = meter.createHistogram('hoard.backend.operation.duration', {
      unit: 's',
      description: 'How long one operation of a remote backend took, answered or failed.',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
    this.backendErrors = meter.createCounter('hoard.backend.errors', {
      unit: '{error}',
      description: 'Failed operations of remote backends, by error type.',
    });
    this.staleServed = meter.createCounter('hoard.stale.served', {
      unit: '{call}',
      description: 'Values served stale: past their ttl within staleTtl, or expired softly (expire, expireTags).',
    });
    this.refreshes = meter.createCounter('hoard.refreshes', {
      unit: '{refresh}',
      description: 'Background refreshes started, stale or early.',
    });
    this.lockWaits = meter.createCounter('hoard.lock.waits', {
      unit: '{call}',
      description: 'Calls that found the lock taken and waited.',
    });
    this.lockTimeouts = meter.createCounter('hoard.lock.timeouts', {
      unit: '{call}',
      description: 'Calls that stopped waiting at lockTimeout and computed anyway.',
    });
    this.busMessages = meter.createCounter('hoard.bus.messages', {
      unit: '{message}',
      description: 'Invalidations sent or received on a bus.',
    });
    this.l1Dropped = meter.createCounter('hoard.l1.dropped', {
      unit: '{entry}',
      description: "L1 copies dropped on another process's message or a bus reconnect.",
    });
    const entries = meter.createObservableGauge('hoard.memory.entries', {
      unit: '{entry}',
      description: 'Entries a MemoryBackend holds.',
    });
    const bytes = meter.createObservableGauge('hoard.memory.bytes', {
      unit: 'By',
      description: 'Approximate bytes a MemoryBackend holds (estimated only with maxBytes).',
    });
    const evictions = meter.createObservableCounter('hoard.memory.evictions', {
      unit: '{entry}',
      description: 'Entries a MemoryBackend removed to make room.',
    });
    this.observed = [calls, entries, bytes, evictions];
    this.observe = (result) => {
      for (const series of this.series.values()) {
        for (const { attributes, value } of series.values()) result.observe(calls, value, attributes);
      }
      for (const { name, backend } of state.backends.values()) {
        const tiered = (backend as { l1?: CacheBackend }).l1;
        const memory = isMemory(backend) ? backend : tiered !== undefined && isMemory(tiered) ? tiered : undefined;
        if (memory === undefined) continue;
        const attributes: Attributes =
          memory === backend ? { [ATTR.backend]: name } : { [ATTR.backend]: name, [ATTR.tier]: 'l1' };
        result.observe(entries, memory.size, attributes);
        result.observe(bytes, memory.bytesHeld, attributes);
        result.observe(evictions, memory.evictions, attributes);
      }
    };
    meter.addBatchObservableCallback(this.observe, this.observed);
  }

  /** The series of `hoard.calls` for one method on one backend. */
  callsOf(method: string, backend: string): CallSeries {
    const id = `${method}\n${backend}`;
    let series = this.series.get(id);
    if (series === undefined) {
      series = new CallSeries(method, backend);
      this.series.set(id, series);
    }
    return series;
  }

  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, this.observed);
  }
}

/** By shape, not `instanceof`: the CommonJS and ESM builds of hoard each have their own class. */
function isMemory(backend: CacheBackend): backend is MemoryBackend {
  return typeof (backend as Partial<MemoryBackend>).evictions === 'number' && backend.synchronous;
}
