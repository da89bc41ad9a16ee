import diagnostics from 'node:diagnostics_channel';

/** What a listener receives. `key` is the hoard key, before a backend's prefix or encoding. */
export interface CacheEvent {
  /** The registered backend name (`'default'` for the default one). */
  backend: string;
  /** The hoard key (with `keyPrefix` and namespace), before the backend's own prefix or encoding. */
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
 */
export const channels: Readonly<Record<CacheEventName, diagnostics.Channel>> = Object.freeze(
  Object.fromEntries(EVENT_NAMES.map((name) => [name, diagnostics.channel(`hoard:${name}`)])) as Record<
    CacheEventName,
    diagnostics.Channel
  >,
);

/**
 * Listeners per event. The call path asks `wanted(event)` before building an event object, so
 * an application with no listener and no channel subscriber pays nothing for events on a hit.
 */
export class CacheEvents {
  private readonly listeners: Record<CacheEventName, CacheListener[]> = { hit: [], miss: [], set: [], evict: [], error: [] };

  on(event: CacheEventName, listener: CacheListener): void {
    this.listenersOf(event).push(listener);
  }

  off(event: CacheEventName, listener: CacheListener): void {
    const list = this.listenersOf(event);
    const at = list.indexOf(listener);
    if (at !== -1) list.splice(at, 1);
  }

  wanted(event: CacheEventName): boolean {
    return this.listeners[event].length !== 0 || channels[event].hasSubscribers;
  }

  emit(event: CacheEventName, payload: CacheEvent): void {
    if (channels[event].hasSubscribers) channels[event].publish(payload);
    for (const listener of this.listeners[event]) {
      try {
        listener(payload);
      } catch (error) {
        // A faulty listener must not break the cached call that happened to notify it.
        process.emitWarning(`hoard: a '${event}' listener threw: ${String(error)}`, 'HoardListenerWarning');
      }
    }
  }

  private listenersOf(event: CacheEventName): CacheListener[] {
    const list = this.listeners[event];
    if (!list) throw new TypeError(`unknown cache event '${String(event)}' (hit, miss, set, evict or error)`);
    return list;
  }
}
