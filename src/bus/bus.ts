import type { FaultListener } from '../backends/backend.js';

/**
 * What a {@link CacheBus} carries between processes: which L1 copies are no longer current.
 * Keys are hoard keys (before any backend prefix). Values never travel: a receiver drops its
 * copy and reads the shared tier again when it needs the entry.
 */
export type Invalidation =
  | {
      /** Hoard keys whose copies are out of date. */
      readonly keys: readonly string[];
    }
  | {
      /** The whole shared tier was cleared: drop every copy. */
      readonly clear: true;
    };

/** What a bus reports to the tiered backend it serves. */
export interface BusListener {
  /** Another process wrote, deleted or cleared: drop the local copies named. */
  invalidated(invalidation: Invalidation): void;
  /**
   * The bus is (again) receiving messages. Whatever was published while it was not is lost,
   * so the listener must treat every local copy as possibly out of date.
   */
  connected(): void;
}

/**
 * The channel through which tiered backends in different processes tell each other to drop
 * L1 copies. {@link RedisBus} is hoard's; another transport implements the same four members.
 */
export interface CacheBus {
  /** True while messages from other processes are being received. */
  readonly connected: boolean;
  /**
   * Attaches the one listener this bus serves. Messages this bus published itself are never
   * delivered to it. A bus serves a single tiered backend.
   */
  listen(listener: BusListener): void;
  /** Tells every other process; rejects (a `CacheBackendError`) when the message could not be sent. */
  publish(invalidation: Invalidation): Promise<void>;
  /** Stops listening and releases the connections the bus made. */
  close(): Promise<void>;
  /**
   * Optional: attaches a listener to the faults no publish reports (a refused connection, a
   * subscription the server refuses). A `TieredBackend` passes its own listeners on to it, so
   * they become `error` events. Returns a function that detaches the listener.
   */
  onFault?(listener: FaultListener): () => void;
}
