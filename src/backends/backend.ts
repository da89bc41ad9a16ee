import type { MaybePromise } from '../maybe-promise.js';

export type { MaybePromise };

/** What `setMany` accepts: a `Map`, an iterable of `[key, value]` pairs, or a plain object. */
export type CacheEntries = Iterable<readonly [string, unknown]> | Readonly<Record<string, unknown>>;

/**
 * Returned by {@link CacheBackend.lookup} when the key is absent, so that a cached
 * `undefined` (a legitimate method result) is told apart from a miss.
 */
export const MISS: unique symbol = Symbol.for('hoard.miss');
/** The type of {@link MISS}, as {@link CacheBackend.lookupWithTtl} and `lookup` of a typed backend answer it. */
export type Miss = typeof MISS;

/**
 * Seconds an entry lives when nothing says otherwise: the module's `defaultTtl` until `configure`
 * changes it, and what a backend that was never registered stores for (`configure` does not reach it).
 */
export const DEFAULT_TTL = 300;

/**
 * The longest ttl hoard accepts, in seconds: 2^31 − 1 (about 68 years), which every backend
 * stores as asked. Redis takes it in milliseconds well inside its 64-bit range (a ttl of 1e16 s
 * would overflow it and fail every store); memcached, whose clock ends in 2038, keeps such an
 * entry until then; the memory backend's expiry times stay exact doubles.
 */
export const MAX_TTL = 2 ** 31 - 1;

/**
 * What a backend learns from the module that registers it, through {@link CacheBackend.attach}.
 * It is all a backend may rely on from above: a backend never imports the module.
 */
export interface BackendContext {
  /**
   * Seconds an entry lives when neither the call nor the backend's own `defaultTtl` option says:
   * the module's `defaultTtl`, read live (it follows `CacheModule.configure`). `0` = never expires.
   */
  readonly defaultTtl: number;
}

/**
 * The contract every backend fulfils: the classic `BaseCache` shape, usable directly.
 *
 * Keys are hoard keys (a backend applies its own `prefix` beneath them). TTLs are seconds,
 * fractions allowed; `0` means never expires; omitted means the backend's `defaultTtl`, else the
 * module's ({@link BackendContext}), else {@link DEFAULT_TTL}. Remote backends reject with a
 * `CacheBackendError` when the server fails or does not answer within their `timeout`; the
 * decorators turn that into fail-open.
 */
export interface CacheBackend {
  /**
   * True when every operation answers synchronously (memory, null): a synchronous method
   * cached on it stays synchronous. Remote and tiered backends are asynchronous.
   */
  readonly synchronous: boolean;

  /** The stored value, or `undefined` on a miss. */
  get(key: string): MaybePromise<unknown>;
  /** The stored value, or {@link MISS} when absent: a stored `undefined` comes back as `undefined`. */
  lookup(key: string): MaybePromise<unknown>;
  /** Stores `value` for `ttl` seconds (default: the backend's or module's `defaultTtl`; `0`: forever). */
  set(key: string, value: unknown, ttl?: number): MaybePromise<void>;
  /** Stores only when the key is absent; true when it did. */
  add(key: string, value: unknown, ttl?: number): MaybePromise<boolean>;
  /** True when the key existed. */
  delete(key: string): MaybePromise<boolean>;
  /** True when the key is present, also after `set(key, undefined)`. */
  has(key: string): MaybePromise<boolean>;
  /** Values aligned with `keys`, `undefined` for misses. */
  getMany(keys: readonly string[]): MaybePromise<unknown[]>;
  /** Stores every entry for `ttl` seconds (as `set`); `entries` is a `Map`, an iterable of `[key, value]` or a plain object. */
  setMany(entries: CacheEntries, ttl?: number): MaybePromise<void>;
  /** How many of `keys` existed and were deleted. */
  deleteMany(keys: readonly string[]): MaybePromise<number>;
  /** Removes this backend's entries: only those under its own `prefix`, never the whole server. */
  clear(): MaybePromise<void>;
  /**
   * Adds `delta` (default 1) atomically where the server is, and returns the new number.
   * A missing key starts at 0 with the default ttl; an existing one keeps its TTL.
   */
  increment(key: string, delta?: number): MaybePromise<number>;
  /** `increment(key, -delta)`: subtracts `delta` (default 1) and returns the new number. */
  decrement(key: string, delta?: number): MaybePromise<number>;
  /** Releases connections and timers. Clients passed in ready-made are left open. */
  close(): MaybePromise<void>;
  /**
   * Optional: deletes `key` only if it holds the string `expected`, atomically. Releases the
   * distributed lock of `@Cached({ lock: true })` safely; without it a get-then-delete is used.
   */
  deleteIfEquals?(key: string, expected: string): MaybePromise<boolean>;
  /**
   * Optional on a shared backend: an entry and its remaining TTL in one round trip (Redis: GET
   * and PTTL pipelined; Memcached: `mg` with the `t` flag), so that a `TieredBackend`'s memory
   * copy expires together with the shared entry. {@link MISS} when the key is absent.
   */
  lookupWithTtl?(key: string): Promise<EntryWithTtl | Miss>;
  /**
   * Optional on an asynchronous backend: what this process already holds for `key`, answered
   * synchronously (a `TieredBackend`'s memory copy), or {@link MISS} when only a round trip can
   * tell. It answers nothing `lookup` would not, so a call path may read a hit's entry and its
   * records this way, without a promise per read, before it falls back to `lookup`.
   */
  peek?(key: string): unknown;
  /**
   * Optional: attaches `listener` to the faults that belong to no call, e.g. a connection the
   * server refuses (certificate, password, permission) or a bus that cannot subscribe.
   * `CacheModule.register` attaches one and reports each fault as an `error` event. Returns a
   * function that detaches the listener.
   */
  onFault?(listener: FaultListener): () => void;
  /**
   * Optional: called by `CacheModule.register` (again on each registration) with what the backend
   * may rely on from the module, chiefly the module's `defaultTtl` for a `set` without a ttl. A
   * backend that wraps others passes the context on to them. A backend used without being
   * registered is never attached and falls back to {@link DEFAULT_TTL}.
   */
  attach?(context: BackendContext): void;
}

/** What `get` answers for what `lookup` found: the value, or `undefined` for {@link MISS}. */
export function valueOf(found: unknown): unknown {
  return found === MISS ? undefined : found;
}

/** Told of a fault that belongs to no call: the error names the cause, `operation` what failed (`connect`, `subscribe`). */
export type FaultListener = (error: Error, operation: string) => void;

/** What {@link CacheBackend.lookupWithTtl} answers for a key that is present. */
export interface EntryWithTtl {
  /** The stored value, deserialized. */
  value: unknown;
  /** Seconds the entry has left (fractions allowed); `0` = it never expires. */
  ttl: number;
}

/** A backend that can tell an entry's remaining TTL. */
export type LookupWithTtl = Required<Pick<CacheBackend, 'lookupWithTtl'>>;

/** Normalises the three shapes `setMany` accepts into pairs. */
export function entriesOf(entries: CacheEntries): Iterable<readonly [string, unknown]> {
  return Symbol.iterator in entries
    ? (entries as Iterable<readonly [string, unknown]>)
    : Object.entries(entries as Record<string, unknown>);
}
