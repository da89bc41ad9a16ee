import diagnostics from 'node:diagnostics_channel';
import { CacheArgumentError } from '../errors.js';

/** What a listener receives. `key` is the hoard key, before a backend's prefix or encoding. */
export interface CacheEvent {
  /** The registered backend name (`'default'` for the default one). */
  backend: string;
  /**
   * The hoard key (with `keyPrefix` and namespace), before the backend's own prefix or encoding;
   * `''` on an `error` of the connection itself (operation `connect` or `subscribe`).
   */
  key: string;
  /** `Class.method`, or the `name` given to `cached(fn)`. */
  method?: string;
  /** The backend operation that failed (`get`, `set`, `delete`, `refresh`, `tag`, ...), on `error`. */
  operation?: string;
  /** What went wrong, on `error`: usually a `CacheBackendError` whose `cause` is the client's error. */
  error?: unknown;
}

/**
 * `hit` and `miss` (a lookup of a cached call), `set` (a value stored), `evict` (`@CacheEvict`,
 * `invalidate`, `invalidateTags`, explicit deletes; not LRU or TTL removal), `error` (a fault
 * the caller was shielded from).
 */
export type CacheEventName = 'hit' | 'miss' | 'set' | 'evict' | 'error';
/** Receives one {@link CacheEvent}; a listener that throws becomes a process warning, never a failed call. */
export type CacheListener = (event: CacheEvent) => void;

const EVENT_NAMES: readonly CacheEventName[] = ['hit', 'miss', 'set', 'evict', 'error'];

/**
 * The same events on Node's diagnostics_channel (`hoard:hit`, `hoard:miss`, `hoard:set`,
 * `hoard:evict`, `hoard:error`), so a tracer can subscribe without hoard depending on it.
 * Held here for the life of the process: Node keeps a channel only while something refers to it.
 */
const channels: Readonly<Record<CacheEventName, diagnostics.Channel>> = Object.freeze(
  Object.fromEntries(EVENT_NAMES.map((name) => [name, diagnostics.channel(`hoard:${name}`)])) as Record<
    CacheEventName,
    diagnostics.Channel
  >,
);

/** One event: its listeners and its diagnostics channel. */
export class Topic {
  readonly listeners: CacheListener[] = [];
  private readonly channel: diagnostics.Channel;

  constructor(readonly name: CacheEventName) {
    this.channel = channels[name];
  }

  /**
   * Whether anyone listens. The call path asks before building an event object, so an
   * application with no listener and no channel subscriber pays nothing for events on a hit.
   */
  get wanted(): boolean {
    return this.listeners.length !== 0 || this.channel.hasSubscribers;
  }

  emit(payload: CacheEvent): void {
    if (this.channel.hasSubscribers) this.channel.publish(payload);
    for (const listener of this.listeners) {
      try {
        listener(payload);
      } catch (error) {
        // A faulty listener must not break the cached call that happened to notify it.
        process.emitWarning(`hoard: a '${this.name}' listener threw: ${String(error)}`, 'HoardListenerWarning');
      }
    }
  }
}

/**
 * The listeners of every event, one {@link Topic} per event in a property of its own. The call
 * path names the topic (`events.miss`) rather than looking it up by the event's name: loads
 * keyed by the name were megamorphic (the memory miss of docs/benchmarks.md pays for them).
 */
export class CacheEvents {
  readonly hit = new Topic('hit');
  readonly miss = new Topic('miss');
  readonly set = new Topic('set');
  readonly evict = new Topic('evict');
  readonly error = new Topic('error');

  on(event: CacheEventName, listener: CacheListener): void {
    this.topic(event).listeners.push(listener);
  }

  off(event: CacheEventName, listener: CacheListener): void {
    const list = this.topic(event).listeners;
    const at = list.indexOf(listener);
    if (at !== -1) list.splice(at, 1);
  }

  private topic(event: CacheEventName): Topic {
    if (!EVENT_NAMES.includes(event))
      throw new CacheArgumentError(`unknown cache event '${String(event)}' (hit, miss, set, evict or error)`);
    return this[event];
  }
}
