import type { Redis } from 'ioredis';
import { ignore } from '../maybe-promise.js';

/**
 * How long a write a master acknowledged may take to reach its replica, at most: the writes and
 * deletes of this last stretch before a connection is lost are the ones a failover may lose.
 */
const REPLICATION_WINDOW_MS = 2000;
/** Pause before trying again to forget the keys written last, when the first try failed. */
const RETRY_MS = 100;

/**
 * Keeps reads from seeing what a failover lost. Redis replicates asynchronously, so the writes
 * and deletes a master acknowledged last may never reach the replica that replaces it; a lost
 * delete would serve the old value again, until its ttl (forever with ttl 0). ioredis' failover
 * detector moves the connection as soon as the sentinels announce the switch, but the old
 * master still accepts writes until then.
 *
 * So the guard remembers the keys written in the last {@link REPLICATION_WINDOW_MS}; from the
 * moment the connection is lost, reads wait; once it is back (on whichever server is master
 * now), those keys are deleted first, and then the reads go out. What a failover may have lost
 * is a miss, never an old value. Writes need not wait: one that lands before the deletion is
 * deleted with the rest, which again is a miss.
 */
export class FailoverGuard {
  /** Hoard keys by when a write of them was last sent (`performance.now()`), oldest first. */
  private readonly written = new Map<string, number>();
  /** Settles once the keys written before the last lost connection are deleted; undefined while connected and done. */
  private gate: Promise<void> | undefined;
  private openGate: () => void = () => undefined;
  private lostAt = 0;
  /** Whether the client has been connected: before that, no failover can have lost anything. */
  private wasReady: boolean;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Redis,
    /** Deletes these hoard keys on the server the client reaches now. */
    private readonly forget: (keys: string[]) => Promise<unknown>,
    /** Told when forgetting failed (it is tried again). */
    private readonly failed: (error: unknown) => void,
  ) {
    this.wasReady = client.status === 'ready';
    client.on('close', this.lost);
    client.on('ready', this.reconnected);
  }

  /**
   * Runs `work` (a read) now, or once what the last lost connection may have lost is deleted.
   * Call it as the command is handed to the client, not earlier: a command given while the
   * connection is away waits in ioredis' offline queue, which is sent before the deletion.
   */
  read<T>(work: () => Promise<T>): Promise<T> {
    const { status, stream } = this.client;
    // A socket already ending (the failover detector closed it) still says `ready` until it has
    // closed, but ioredis queues what is sent meanwhile for the next connection.
    if (this.gate === undefined && (!this.wasReady || (status === 'ready' && stream.writable))) return work();
    return this.close().then(work);
  }

  /** A write or delete of `key` is being sent. */
  wrote(key: string): void {
    const now = performance.now();
    const written = this.written;
    written.delete(key);
    written.set(key, now);
    // While connected, what was written before the window has reached the replicas: let it go.
    // While not, everything since the window before the loss is still needed.
    if (this.gate !== undefined) return;
    for (const [old, at] of written) {
      if (at >= now - REPLICATION_WINDOW_MS) break;
      written.delete(old);
    }
  }

  /** Stops following the client. */
  stop(): void {
    clearTimeout(this.retry);
    this.client.off('close', this.lost);
    this.client.off('ready', this.reconnected);
    this.openGate();
  }

  private close(): Promise<void> {
    // A client made with lazyConnect connects on its first command, which the reads now hold back.
    if (this.client.status === 'wait') this.client.connect().catch(ignore);
    if (this.gate === undefined) {
      this.lostAt = performance.now();
      this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
    }
    return this.gate;
  }

  private readonly lost = (): void => {
    if (this.wasReady) void this.close();
  };

  private readonly reconnected = (): void => {
    this.wasReady = true;
    if (this.gate === undefined) return;
    clearTimeout(this.retry);
    const since = this.lostAt - REPLICATION_WINDOW_MS;
    const keys = [...this.written].filter(([, at]) => at >= since).map(([key]) => key);
    if (keys.length === 0) return this.open();
    this.forget(keys).then(
      () => this.open(),
      (error: unknown) => {
        this.failed(error);
        // A server that answers READONLY is a replica (a restarted old master the sentinels have
        // not yet been asked about): trying it again never succeeds, so reconnect, which asks the
        // sentinels for the master again. Any other failure is tried again on this connection.
        if (error instanceof Error && error.message.startsWith('READONLY')) this.client.disconnect(true);
        else if (this.client.status === 'ready') this.retry = setTimeout(this.reconnected, RETRY_MS).unref();
      },
    );
  };

  private open(): void {
    this.gate = undefined;
    this.openGate();
  }
}
