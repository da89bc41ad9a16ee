import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { FaultListener } from '../backends/backend.js';
import { Faults } from '../backends/faults.js';
import {
  connect,
  duplicateClient,
  ignoreErrors,
  watchRefusals,
  type RedisConnectionOptions,
} from '../backends/redis-connection.js';
import { DEFAULT_TIMEOUT, withDeadline } from '../backends/remote.js';
import { assertPositiveSeconds } from '../backends/ttl.js';
import { CacheArgumentError, CacheBackendError, messageOf } from '../errors.js';
import { ignore } from '../maybe-promise.js';
import type { BusListener, CacheBus, Invalidation } from './bus.js';

/**
 * Options of {@link RedisBus}: where Redis is, exactly as for `RedisBackend` (`url`, any ioredis
 * option such as `tls` or `sentinels` + `name`, or a ready `client`), and the channel.
 */
export interface RedisBusOptions extends RedisConnectionOptions {
  /**
   * The pub/sub channel. Every process of one application must use the same one; applications
   * that share a Redis but not their cache entries should use different ones, or they drop each
   * other's L1 copies for nothing. An ACL user needs it (`&channel`). Default `'hoard:invalidations'`.
   */
  channel?: string;
  /** Seconds one publish may take before it rejects with a `CacheBackendError`. Must be > 0. Default 0.5. */
  timeout?: number;
}

const DEFAULT_CHANNEL = 'hoard:invalidations';
/** Pause before subscribing again after the server refused (e.g. NOPERM until the ACL is fixed). */
const RESUBSCRIBE_DELAY_MS = 1000;

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
  private readonly publisher: Redis | Cluster;
  private readonly subscriber: Redis | Cluster;
  private readonly ownsPublisher: boolean;
  private listener: BusListener | undefined;
  private subscribed = false;
  private closed = false;
  private readonly faults = new Faults();
  private readonly stopWatching: readonly (() => void)[];
  /** The last fault reported, so that a cause repeating on every retry is reported once. */
  private lastFault: string | undefined;
  private resubscribe: NodeJS.Timeout | undefined;

  constructor(options: RedisBusOptions = {}) {
    const { client, url, channel = DEFAULT_CHANNEL, timeout = DEFAULT_TIMEOUT, ...ioredisOptions } = options ?? {};
    if (client !== undefined && url !== undefined) {
      throw new CacheArgumentError(
        'RedisBus: give either `url` and ioredis options (the bus makes its connections) or `client` (a ready ioredis client), not both',
      );
    }
    if (typeof channel !== 'string' || channel === '')
      throw new CacheArgumentError('RedisBus: `channel` must be a non-empty string');
    assertPositiveSeconds(timeout, 'RedisBus: timeout');
    this.channel = channel;
    this.timeout = timeout;
    const { client: publisher, owned } = connect(client, url, ioredisOptions, timeout * 1000);
    const subscriber = duplicateClient(publisher);
    this.publisher = publisher;
    this.ownsPublisher = owned;
    this.subscriber = subscriber;
    const refused = (reason: Error | undefined): void => {
      if (reason === undefined) this.lastFault = undefined;
      else this.report(reason, 'connect');
    };
    this.stopWatching = [watchRefusals(publisher, refused), watchRefusals(subscriber, refused)];
    // Outages show as `connected === false`.
    ignoreErrors(subscriber);
    subscriber.on('close', () => (this.subscribed = false));
    // After every (re)connection: ioredis may resubscribe by itself too, which Redis takes as a no-op.
    subscriber.on('ready', () => this.subscribe());
    subscriber.on('message', (channel: string, text: string) => this.receive(channel, text));
    // The duplicate of a lazyConnect client waits for a first command; a bus must listen from the start.
    if (subscriber.status === 'wait') subscriber.connect().catch(ignore);
  }

  /** Attaches a listener to the faults no publish reports: a refused connection, a subscription refused (NOPERM). */
  onFault(listener: FaultListener): () => void {
    return this.faults.listen(listener);
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
    clearTimeout(this.resubscribe);
    for (const stop of this.stopWatching) stop();
    this.subscriber.disconnect();
    if (this.ownsPublisher) this.publisher.disconnect();
  }

  private subscribe(): void {
    clearTimeout(this.resubscribe);
    this.subscriber.subscribe(this.channel).then(
      () => {
        if (this.closed || this.subscribed) return;
        this.subscribed = true;
        this.lastFault = undefined;
        this.listener?.connected();
      },
      (error: unknown) => {
        if (this.closed || !(error instanceof Error)) return;
        this.report(error, 'subscribe');
        // A refusal (NOPERM on the channel) stays until the ACL changes, which no reconnect
        // announces: ask again, and the bus is back as soon as it is allowed.
        if (this.subscriber.status === 'ready')
          this.resubscribe = setTimeout(() => this.subscribe(), RESUBSCRIBE_DELAY_MS).unref();
      },
    );
  }

  private report(reason: Error, operation: string): void {
    if (this.lastFault === reason.message) return;
    this.lastFault = reason.message;
    const about =
      operation === 'subscribe' ? `subscribing to ${JSON.stringify(this.channel)}` : 'the server refuses the connection';
    this.faults.report(
      new CacheBackendError(`RedisBus: ${about}: ${messageOf(reason)}`, operation, undefined, { cause: reason }),
      operation,
    );
  }

  private receive(channel: string, text: string): void {
    if (channel !== this.channel || this.closed) return;
    const message = decode(text);
    if (message === undefined || message.from === this.origin) return;
    this.listener?.invalidated(message.invalidation);
  }
}
