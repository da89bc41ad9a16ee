import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../backends/redis.js';
import { withDeadline } from '../backends/remote.js';
import { CacheArgumentError, CacheBackendError } from '../errors.js';
import type { BusListener, CacheBus, Invalidation } from './bus.js';

/** Options of {@link RedisBus}: where to publish and listen (`url` or `client`), on which channel. */
export interface RedisBusOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://…`: the bus makes its own two
   * connections (one publishes, one subscribes) and closes them on `close()`. No default: give
   * exactly one of `url` and `client`.
   */
  url?: string;
  /**
   * A ready ioredis client (`Redis` or `Cluster`), e.g. the one your `RedisBackend` uses: the bus
   * publishes through it and subscribes on a `duplicate()` of it. The client itself is never closed.
   * No default: give exactly one of `url` and `client`.
   */
  client?: RedisClient;
  /**
   * The pub/sub channel. Every process of one application must use the same one; applications
   * that share a Redis but not their cache entries should use different ones, or they drop each
   * other's L1 copies for nothing. Default `'hoard:invalidations'`.
   */
  channel?: string;
  /** Seconds one publish may take before it rejects with a `CacheBackendError`. Must be > 0. Default 0.5. */
  timeout?: number;
}

const DEFAULT_CHANNEL = 'hoard:invalidations';
const DEFAULT_TIMEOUT = 0.5;
/** Longest pause between reconnect attempts of the connections the bus makes: back within a second. */
const MAX_RECONNECT_DELAY_MS = 1000;

const ignore = (): void => undefined;

/**
 * The wire format, small JSON: `{"from":"<origin>","keys":["k1","k2"]}` or
 * `{"from":"<origin>","clear":true}`. `from` is the sending bus's random id, so a bus can skip
 * its own messages. Anything else on the channel is not ours (or is damaged) and is ignored.
 */
function decode(text: string): { from: string; invalidation: Invalidation } | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const { from, keys, clear } = message as Record<string, unknown>;
  if (typeof from !== 'string') return undefined;
  if (clear === true) return { from, invalidation: { clear: true } };
  if (Array.isArray(keys) && keys.every((key) => typeof key === 'string')) return { from, invalidation: { keys } };
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Cross-process invalidation over Redis pub/sub for {@link TieredBackend}: every write, delete
 * and clear is published (keys only, never values) and every other process drops its L1 copies.
 *
 * Subscribing needs a connection of its own, so the bus always makes one (from `url`, or as a
 * `duplicate()` of the given `client`). It reconnects by itself and resubscribes; {@link connected}
 * is false meanwhile, and the tiered backend keeps its L1 copies short until it is back.
 */
export class RedisBus implements CacheBus {
  /** The pub/sub channel in use. */
  readonly channel: string;
  /** Seconds per publish; see {@link RedisBusOptions.timeout}. */
  readonly timeout: number;
  /** This bus's random id: messages that carry it are its own and are not delivered back. */
  private readonly origin = randomBytes(9).toString('base64url');
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly ownsPublisher: boolean;
  private listener: BusListener | undefined;
  private subscribed = false;
  private closed = false;

  constructor(options: RedisBusOptions) {
    const { url, client, channel = DEFAULT_CHANNEL, timeout = DEFAULT_TIMEOUT } = options ?? {};
    if ((url === undefined) === (client === undefined)) {
      throw new CacheArgumentError('RedisBus: give either `url` (the bus makes its connections) or `client` (a ready ioredis client), not both or neither');
    }
    if (typeof channel !== 'string' || channel === '') throw new CacheArgumentError('RedisBus: `channel` must be a non-empty string');
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new CacheArgumentError(`RedisBus: \`timeout\` must be a finite number of seconds > 0, got ${String(timeout)}`);
    }
    this.channel = channel;
    this.timeout = timeout;
    if (client !== undefined) {
      this.publisher = client;
      this.subscriber = client instanceof Cluster ? client.duplicate() : client.duplicate();
      this.ownsPublisher = false;
    } else {
      const settings = {
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
      };
      this.publisher = new Redis(url!, settings);
      this.subscriber = new Redis(url!, settings);
      this.ownsPublisher = true;
      // A failed publish reaches the writer as a rejection; the connection's own errors need no log.
      this.publisher.on('error', ignore);
    }
    const subscriber = this.subscriber;
    // Outages show as `connected === false`; without a listener ioredis would log every retry.
    subscriber.on('error', ignore);
    subscriber.on('close', () => (this.subscribed = false));
    // After every (re)connection: ioredis may resubscribe by itself too, which Redis takes as a no-op.
    subscriber.on('ready', () => this.subscribe());
    subscriber.on('message', (channel: string, text: string) => this.receive(channel, text));
    // The duplicate of a lazyConnect client waits for a first command; a bus must listen from the start.
    if (subscriber.status === 'wait') subscriber.connect().catch(ignore);
  }

  get connected(): boolean {
    return this.subscribed;
  }

  listen(listener: BusListener): void {
    if (this.listener !== undefined) {
      throw new CacheArgumentError('RedisBus: this bus already serves a TieredBackend; give each TieredBackend its own bus');
    }
    this.listener = listener;
  }

  async publish(invalidation: Invalidation): Promise<void> {
    const message = 'clear' in invalidation ? { from: this.origin, clear: true } : { from: this.origin, keys: invalidation.keys };
    const about = `RedisBus: publishing to ${JSON.stringify(this.channel)}`;
    try {
      await withDeadline(
        this.publisher.publish(this.channel, JSON.stringify(message)),
        this.timeout * 1000,
        () => new CacheBackendError(`${about} got no answer within ${this.timeout} s`, 'publish'),
      );
    } catch (error) {
      if (error instanceof CacheBackendError) throw error;
      throw new CacheBackendError(`${about} failed: ${messageOf(error)}`, 'publish', undefined, { cause: error });
    }
  }

  /** Drops the subscription connection, and the publishing one when the bus made it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    this.subscriber.disconnect();
    if (this.ownsPublisher) this.publisher.disconnect();
  }

  private subscribe(): void {
    this.subscriber.subscribe(this.channel).then(() => {
      if (this.closed || this.subscribed) return;
      this.subscribed = true;
      this.listener?.connected();
    }, ignore);
  }

  private receive(channel: string, text: string): void {
    if (channel !== this.channel || this.closed) return;
    const message = decode(text);
    if (message === undefined || message.from === this.origin) return;
    this.listener?.invalidated(message.invalidation);
  }
}
