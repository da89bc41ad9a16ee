import diagnostics, { type TracingChannel } from 'node:diagnostics_channel';
import { isThenable } from './maybe-promise.js';

/**
 * What hoard publishes for tracers beside the `hoard:<event>` channels of events.ts. Every
 * publisher asks `hasSubscribers` first, so an application where nothing subscribes builds no
 * message. `hoard/otel` is the subscriber hoard ships; any other tracer may subscribe the same way.
 */

/** Common to every traced message: Node's TracingChannel protocol sets `result` or `error` as the work settles. */
interface Traced {
  result?: unknown;
  error?: unknown;
}

/** `tracing:hoard:call:*`: one call of a `@Cached` method or `cached(fn)`. */
export interface CallMessage extends Traced {
  /** `Class.method`, or the `name` given to `cached(fn)`. */
  readonly method: string;
  /** The registered backend name. */
  readonly backend: string;
}

/** `tracing:hoard:compute:*`: the method body running because the cache could not answer (or to refresh it). */
export interface ComputeMessage extends Traced {
  readonly method: string;
  readonly backend: string;
}

/** Where a remote backend sends an operation, for database span attributes. */
export interface ServerAddress {
  /** `redis` or `memcached` (OpenTelemetry's `db.system.name`). */
  readonly system: string;
  readonly address?: string;
  readonly port?: number;
}

/** `tracing:hoard:operation:*`: one operation of a remote backend on its server. */
export interface OperationMessage extends Traced {
  /** The backend instance (registered directly, or the `l2` of a tiered backend). */
  readonly instance: object;
  /** hoard's operation name: `get`, `set`, `add`, `delete`, `getMany`, `clear`, `increment`, … */
  readonly operation: string;
  /** The hoard key, when the operation has one. */
  readonly key: string | undefined;
  readonly server: ServerAddress | undefined;
}

/** `hoard:stale`: a value past its ttl served within `staleTtl`. */
export interface StaleMessage {
  readonly method: string;
  readonly backend: string;
  readonly key: string;
}

/** `hoard:refresh`: a background refresh started, for a stale entry or early (XFetch's draw). */
export interface RefreshMessage extends StaleMessage {
  readonly kind: 'stale' | 'early';
}

/** `hoard:lock`: a call of `@Cached({ lock: true })` found the lock taken (`wait`) or stopped waiting at `lockTimeout` (`timeout`). */
export interface LockMessage {
  readonly key: string;
  readonly state: 'wait' | 'timeout';
}

/** `hoard:bus`: a tiered backend sent an invalidation to other processes, or received one. */
export interface BusMessage {
  readonly instance: object;
  readonly direction: 'sent' | 'received';
}

/** `hoard:l1-dropped`: a tiered backend dropped L1 copies on another process's message, or all of them on a bus reconnect. */
export interface L1DroppedMessage {
  readonly instance: object;
  readonly copies: number;
}

export const callChannel: TracingChannel<unknown, CallMessage> = diagnostics.tracingChannel('hoard:call');
export const computeChannel: TracingChannel<unknown, ComputeMessage> = diagnostics.tracingChannel('hoard:compute');
export const operationChannel: TracingChannel<unknown, OperationMessage> = diagnostics.tracingChannel('hoard:operation');
export const staleChannel = diagnostics.channel('hoard:stale');
export const refreshChannel = diagnostics.channel('hoard:refresh');
export const lockChannel = diagnostics.channel('hoard:lock');
export const busChannel = diagnostics.channel('hoard:bus');
export const l1DroppedChannel = diagnostics.channel('hoard:l1-dropped');

/**
 * Runs `work` under a TracingChannel, as Node's `traceSync`/`tracePromise` would, for work that
 * may answer either way (a cached call is synchronous on memory, a promise elsewhere): `start`
 * (its bound stores active while `work` runs), `end`, then `asyncStart`/`asyncEnd` when a promise
 * settles; `error` with `message.error` when it throws or rejects.
 */
export function traced<M extends Traced, T>(channel: TracingChannel<unknown, M>, message: M, work: () => T): T {
  return channel.start.runStores(message, () => {
    let result: T;
    try {
      result = work();
    } catch (error) {
      message.error = error;
      channel.error.publish(message);
      channel.end.publish(message);
      throw error;
    }
    if (!isThenable(result)) {
      message.result = result;
      channel.end.publish(message);
      return result;
    }
    channel.end.publish(message);
    return Promise.resolve(result).then(
      (value) => {
        message.result = value;
        channel.asyncStart.publish(message);
        channel.asyncEnd.publish(message);
        return value;
      },
      (error: unknown) => {
        message.error = error;
        channel.error.publish(message);
        channel.asyncStart.publish(message);
        channel.asyncEnd.publish(message);
        throw error;
      },
    ) as T;
  });
}
