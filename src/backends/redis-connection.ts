import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ignore } from '../maybe-promise.js';

/**
 * A ready ioredis client, 5.x or 6.x: a `Redis` (one server, or a Sentinel set) or a `Cluster`.
 * Typed by what it has rather than as ioredis' classes: the two majors declare their classes
 * differently (private members, reply types), so an ioredis 5 client does not type-check as an
 * ioredis 6 `Redis`, while the commands hoard sends behave alike in both.
 */
export interface RedisClient {
  /** The connection's state (`wait`, `connecting`, `ready`, `reconnecting`, `end`, …). */
  readonly status: string;
  /** True for a `Cluster`. */
  readonly isCluster: boolean;
  /** The client's options; hoard refuses one with ioredis' own `keyPrefix`. */
  readonly options: {
    /** ioredis' key prefix: refused, use the backend's `prefix`. */
    readonly keyPrefix?: string;
  };
  /** GET, the reply as bytes. */
  getBuffer(key: string | Buffer): Promise<Buffer | null>;
  /** PUBLISH, for the bus. */
  publish(channel: string, message: string): Promise<number>;
  /** A new client with the same options: the bus subscribes on one. */
  duplicate(): unknown;
  /** Ends the connection once pending replies have arrived. */
  quit(): Promise<unknown>;
  /** Ends the connection at once. */
  disconnect(): void;
  /** Listens to a connection event (`error`, `ready`, `close`, …). */
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** Stops listening. */
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** A client as hoard calls it: through ioredis 6's declarations, which an ioredis 5 client meets at run time. */
function ioredisClient(client: RedisClient): Redis | Cluster {
  return client as unknown as Redis | Cluster;
}

/** A new connection with `client`'s options: a `Redis` for a `Redis`, a `Cluster` for a `Cluster`. */
export function duplicateClient(client: Redis | Cluster): Redis | Cluster {
  // One call for both classes: they declare duplicate() with signatures TypeScript cannot unite.
  return (client as Redis).duplicate();
}

/**
 * How {@link RedisBackend} and {@link RedisBus} reach Redis: a `client`, or `url` and/or any
 * ioredis option (`host`, `port`, `username`, `password`, `db`, `tls`, `sentinels` + `name`, …).
 */
export interface RedisConnectionOptions extends Omit<RedisOptions, 'keyPrefix'> {
  /**
   * A client made by the application, e.g. a `Cluster`. Used as is (its own retry and timeout
   * settings apply; hoard's fail-fast settings are not added) and never closed by hoard. `url`
   * and ioredis options are then not used. Default: hoard makes its own client.
   */
  client?: RedisClient;
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); other ioredis options still
   * apply. Default: ioredis' default, `127.0.0.1:6379` (or its `host`/`port` options).
   */
  url?: string;
}

/** Longest pause between reconnect attempts, so a server that returns is used again within seconds. */
const MAX_RECONNECT_DELAY_MS = 1000;

/**
 * ioredis settings for a cache: a command to a dead server fails at once instead of being
 * retried for over a minute, and the connection is re-established within a second of the
 * server coming back. A hung server is the caller's to bound (`timeout`, one timer for all
 * commands), not ioredis' `commandTimeout`, which arms a timer per command. The application's
 * own options override these.
 *
 * No auto-pipelining: the backend sends a tick's lookups as one MGET itself, and ioredis'
 * auto-pipeline would hold every command until `setImmediate`, and then until the connection's
 * previous pipeline has its replies (docs/backends.md: "One MGET and one socket write a tick").
 *
 * No ready check: it sends INFO, which an ACL user limited to what hoard needs may not run, and
 * ioredis then prints "Skipping the ready check" to the console; a server still loading its
 * data answers LOADING, which is a failed call (fail-open) like any other.
 *
 * With `sentinels`, the failover detector: without it ioredis stays on a demoted master for
 * seconds after the switch, and writes and deletes acknowledged there are lost when it resyncs.
 */
function hoardSettings(timeoutMs: number, sentinels: boolean): RedisOptions {
  return {
    enableAutoPipelining: false,
    enableReadyCheck: false,
    // A command sent on a connection that was lost before it answered is not sent again on the
    // next one (it fails at `timeout`): a read resent after a failover could overtake the
    // deletion of what the failover lost (see FailoverGuard).
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(timeoutMs, 2000),
    // How long a closing socket may linger before it is destroyed (ioredis: 2 s, which keeps a
    // process that closed its cache alive that long when the server is gone).
    disconnectTimeout: timeoutMs,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
    ...(sentinels ? { failoverDetector: true } : {}),
  };
}

/** The client a backend or a bus works through. */
export interface Connection {
  readonly client: Redis | Cluster;
  /** True when hoard made the client (and so closes it); a ready-made client is the application's to close. */
  readonly owned: boolean;
  /** The settings hoard made the client with; undefined for a ready-made one. */
  readonly settings: RedisOptions | undefined;
}

/**
 * The application's ready-made `client`, as it is; else a new client from `url` and the
 * application's ioredis `options`, over hoard's settings.
 */
export function connect(
  client: RedisClient | undefined,
  url: string | undefined,
  options: Omit<RedisOptions, 'keyPrefix'>,
  timeoutMs: number,
): Connection {
  if (client !== undefined) return { client: ioredisClient(client), owned: false, settings: undefined };
  const settings = { ...hoardSettings(timeoutMs, options.sentinels !== undefined), ...options };
  const made = url === undefined ? new Redis(settings) : new Redis(url, settings);
  ignoreErrors(made);
  return { client: made, owned: true, settings };
}

const guarded = new WeakSet<object>();

/**
 * Listens to the errors of a client hoard made: its failures reach the owner as failed commands
 * (and from there `error` events), its refusals through watchRefusals; without a listener ioredis
 * would also log every reconnect attempt. Each error also guards the socket behind it: ioredis
 * listens to a socket's errors with `once`, and a TLS handshake that fails can emit a second one
 * (the server's alert after the certificate error), which would be uncaught and end the process.
 */
export function ignoreErrors(client: Redis | Cluster): void {
  client.on('error', () => {
    const stream = (client as { stream?: { on(event: 'error', listener: () => void): unknown } }).stream;
    if (stream === undefined || guarded.has(stream)) return;
    guarded.add(stream);
    stream.on('error', ignore);
  });
}

/** Replies Redis gives a connection it will not serve as configured: a wrong password, no password, no permission. */
const REFUSING_REPLY = /^(WRONGPASS|NOAUTH|NOPERM)\b/;
/** Node's codes for a TLS peer that cannot be trusted (unknown CA, self-signed, expired, wrong name) or a failed handshake. */
const UNTRUSTED_TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|^ERR_SSL_|^ERR_TLS_/;

/**
 * True for a connection error that will repeat until someone changes a setting: the server
 * refused it for a reason, as opposed to a server that is down, slow or restarting.
 */
export function isRefusal(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return REFUSING_REPLY.test(error.message) || (typeof code === 'string' && UNTRUSTED_TLS_CODE.test(code));
}

/**
 * Follows `client`'s connection: `refused(reason)` on each refusal (see {@link isRefusal}),
 * `refused(undefined)` once it is ready again. Returns a function that stops following.
 */
export function watchRefusals(client: RedisClient, refused: (reason: Error | undefined) => void): () => void {
  const onError = (error: unknown): void => {
    if (isRefusal(error)) refused(error);
  };
  const onReady = (): void => refused(undefined);
  client.on('error', onError);
  client.on('ready', onReady);
  return () => {
    client.off('error', onError);
    client.off('ready', onReady);
  };
}
