import { CacheArgumentError } from '../../errors.js';
import { Connection, type ConnectionEvents } from './connection.js';
import type { Chunk, Frame } from './protocol.js';

export interface ServerOptions {
  /** Milliseconds a request may wait for its answer. */
  timeoutMs: number;
  /** Connections kept to the server; requests go round-robin over them. */
  poolSize: number;
  /** Failures in a row (connections lost with requests pending) that take the server out. */
  failureThreshold: number;
  /** First and longest pause, in milliseconds, between attempts to bring a down server back. */
  retryDelayMs: { first: number; max: number };
  /**
   * Runs on a down server before it is used again (its `exchange` then accepts requests);
   * resolving puts the server back, rejecting keeps it out until the next attempt.
   */
  revive(server: MemcachedServer): Promise<void>;
  /** The server was taken out after {@link failureThreshold} failures in a row. */
  onDown(server: MemcachedServer, error: Error): void;
  /** The server answered again and {@link revive} succeeded. */
  onUp(server: MemcachedServer): void;
}

/** Parses `'host:port'` (IPv6 as `'[::1]:11211'`). */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new CacheArgumentError(`MemcachedBackend: a server must be 'host:port', got ${JSON.stringify(address)}`);
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * One memcached server: a small pool of pipelined connections, opened on demand and replaced
 * when they fail, and the server's health. After `failureThreshold` failures in a row the
 * server is down: requests to it reject at once (its keys go to other servers meanwhile), and
 * it is retried with a doubling pause until it answers and `revive` succeeds.
 */
export class MemcachedServer implements ConnectionEvents {
  readonly host: string;
  readonly port: number;
  private readonly connections: (Connection | undefined)[];
  private next = 0;
  private failures = 0;
  /** `reviving`: out of the ring, but letting `revive` talk to it. */
  private state: 'up' | 'down' | 'reviving' | 'closed' = 'up';
  private retryTimer?: NodeJS.Timeout;
  private retryDelay: number;

  constructor(
    /** `host:port`, also the server's name on the hash ring. */
    readonly address: string,
    private readonly options: ServerOptions,
  ) {
    ({ host: this.host, port: this.port } = parseAddress(address));
    this.connections = new Array<Connection | undefined>(options.poolSize);
    this.retryDelay = options.retryDelayMs.first;
  }

  /** See {@link Connection.exchange}; rejects at once while the server is down. */
  exchange(chunks: readonly Chunk[], expect: number): Promise<Frame[]> {
    if (this.state === 'down' || this.state === 'closed') {
      return Promise.reject(new Error(`memcached ${this.address} is ${this.state}`));
    }
    return this.connection().exchange(chunks, expect);
  }

  /** Closes every connection once its pending requests have answered, and stops retrying. */
  close(): void {
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    for (const connection of this.connections) connection?.close();
  }

  onSuccess(): void {
    this.failures = 0;
  }

  onFailure(connection: Connection, error: Error): void {
    const slot = this.connections.indexOf(connection);
    if (slot >= 0) this.connections[slot] = undefined;
    if (this.state !== 'up' || ++this.failures < this.options.failureThreshold) return;
    this.takeOut();
    this.options.onDown(this, error);
  }

  private connection(): Connection {
    const slot = this.next;
    this.next = (slot + 1) % this.connections.length;
    let connection = this.connections[slot];
    if (connection === undefined || !connection.usable) {
      connection = new Connection(this.host, this.port, this.options.timeoutMs, this);
      this.connections[slot] = connection;
    }
    return connection;
  }

  /** Drops the connections and schedules the next attempt to bring the server back. */
  private takeOut(): void {
    this.state = 'down';
    for (const connection of this.connections) connection?.destroy(new Error(`memcached ${this.address} is down`));
    this.connections.fill(undefined);
    this.retryTimer = setTimeout(() => void this.retry(), this.retryDelay).unref();
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryDelayMs.max);
  }

  private async retry(): Promise<void> {
    if (this.state !== 'down') return;
    this.state = 'reviving';
    try {
      await this.options.revive(this);
    } catch {
      if (this.state === 'reviving') this.takeOut();
      return;
    }
    if (this.state !== 'reviving') return;
    this.state = 'up';
    this.failures = 0;
    this.retryDelay = this.options.retryDelayMs.first;
    this.options.onUp(this);
  }
}
