import { CacheArgumentError, CacheBackendError } from '../errors.js';
import {
  entriesOf,
  MISS,
  valueOf,
  type BackendContext,
  type CacheBackend,
  type CacheEntries,
  type EntryWithTtl,
  type Miss,
} from './backend.js';
import { assertSeconds, effectiveTtl, isSeconds, secondsError } from './ttl.js';

/** Options of `new MemoryBackend(options)` (all optional). */
export interface MemoryBackendOptions {
  /** The most entries kept; past it the least recently used entry goes. Default 10 000. */
  maxEntries?: number;
  /**
   * Approximate bytes of values kept, estimated from their shape (strings 2 bytes a character,
   * numbers 8, buffers their length, plus per-object overhead). Unlimited by default. A single
   * value larger than this is not stored.
   */
  maxBytes?: number;
  /** Seconds an entry lives when `set` gets no ttl; default: the module's once registered, 300 before. `0` = forever. */
  defaultTtl?: number;
}

/** The clock and timer as the module found them; sinon's fake timers replace the globals. */
const systemNow = Date.now;
const systemSetTimeout = setTimeout;
let clockReading = 0;

function forgetClockReading(): void {
  clockReading = 0;
}

/**
 * Milliseconds since the epoch, read from the system at most once a millisecond, as lru-cache
 * does: a clock read is a large part of a memory hit (docs/benchmarks.md). A real (unref'd) timer forgets the
 * reading after 1 ms, so while the event loop is blocked an entry may outlive its TTL by the
 * blocked time. When `Date.now` has been replaced (fake timers), it is read on every call, so
 * tests control time exactly.
 */
function now(): number {
  if (Date.now !== systemNow) return Date.now();
  if (clockReading === 0) {
    clockReading = systemNow();
    systemSetTimeout(forgetClockReading, 1).unref();
  }
  return clockReading;
}

/** Slot 0 of the recency ring is no entry: its neighbours are the ring's two ends. */
const RING = 0;
/** Slots made when the first entry comes; the arrays double from there, up to `maxEntries` + 1. */
const FIRST_CAPACITY = 16;

/**
 * An in-process LRU cache with TTLs. Values are kept by reference (no copy, no serialization).
 * Every operation is synchronous, so a synchronous method cached here stays synchronous.
 *
 * Entries live in slots of parallel arrays, as lru-cache keeps them: the Map gives a key's slot
 * (a small integer, stored in the Map itself), and typed arrays hold the recency ring and the
 * expiries. An entry is then a few array cells instead of an object with a boxed expiry; the
 * arrays grow by doubling (never past `maxEntries`), so a new key writes into cells that exist.
 */
export class MemoryBackend implements CacheBackend {
  readonly synchronous = true;

  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly defaultTtl: number | undefined;
  private context: BackendContext | undefined;

  private readonly slots = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private values: unknown[] = [];
  /** Absolute expiry in ms since the epoch (see `now`), 0 = never. */
  private expiries = new Float64Array(0);
  /** The estimate counted against `maxBytes`; kept only when there is such a limit. */
  private sizes: Float64Array | undefined;
  /**
   * The recency ring through slot {@link RING}: `older[RING]` is the most recently used slot,
   * `newer[RING]` the next to evict. Free slots are chained through `older`, from `free`.
   */
  private older = new Uint32Array(0);
  private newer = new Uint32Array(0);
  private free = RING;
  /** Slots handed out so far (slot 0 included); those past it were never used. */
  private used = 1;
  private bytes = 0;
  private evicted = 0;

  constructor(options: MemoryBackendOptions = {}) {
    const { maxEntries = 10_000, maxBytes = Infinity, defaultTtl } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new CacheArgumentError(`MemoryBackend: \`maxEntries\` must be a whole number ≥ 1, got ${String(maxEntries)}`);
    }
    if (typeof maxBytes !== 'number' || !(maxBytes > 0)) {
      throw new CacheArgumentError(`MemoryBackend: \`maxBytes\` must be a number of bytes > 0, got ${String(maxBytes)}`);
    }
    if (defaultTtl !== undefined) assertSeconds(defaultTtl, 'MemoryBackend: `defaultTtl`');
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.defaultTtl = defaultTtl;
  }

  /** {@inheritDoc CacheBackend.attach} */
  attach(context: BackendContext): void {
    this.context = context;
  }

  /** How many entries are held (expired ones included until they are touched or evicted). */
  get size(): number {
    return this.slots.size;
  }

  /** Approximate bytes of the values held, estimated only when `maxBytes` is set (0 otherwise). */
  get bytesHeld(): number {
    return this.bytes;
  }

  /** How many entries were removed to make room (`maxEntries` or `maxBytes`) since the backend was made. */
  get evictions(): number {
    return this.evicted;
  }

  lookup(key: string): unknown {
    const slot = this.live(key);
    if (slot === undefined) return MISS;
    this.touch(slot);
    return this.values[slot];
  }

  /**
   * The value and the seconds it has left (`0`: never expires), without counting as a use.
   * For tiers built on this one (a `TieredBackend` keeps the copy it had when a write fails).
   */
  peekWithTtl(key: string): EntryWithTtl | Miss {
    const slot = this.live(key);
    if (slot === undefined) return MISS;
    const expiry = this.expiries[slot];
    return { value: this.values[slot], ttl: expiry === 0 ? 0 : Math.max(expiry - Date.now(), 1) / 1000 };
  }

  get(key: string): unknown {
    return valueOf(this.lookup(key));
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  set(key: string, value: unknown, ttl?: number): void {
    const seconds = effectiveTtl(ttl, this.defaultTtl, this.context);
    if (!isSeconds(seconds)) throw secondsError(seconds, `MemoryBackend.set('${key}'): ttl`);
    const expiry = seconds === 0 ? 0 : now() + seconds * 1000;
    const size = this.maxBytes === Infinity ? 0 : estimateBytes(value);
    let slot = this.slots.get(key);
    if (size > this.maxBytes) {
      if (slot !== undefined) this.remove(slot);
      return;
    }
    if (slot === undefined) {
      if (this.slots.size >= this.maxEntries) this.evictOldest();
      slot = this.allocate();
      this.slots.set(key, slot);
      this.keys[slot] = key;
      this.link(slot);
    } else {
      this.touch(slot);
    }
    this.values[slot] = value;
    this.expiries[slot] = expiry;
    const sizes = this.sizes;
    if (sizes !== undefined) {
      this.bytes += size - sizes[slot];
      sizes[slot] = size;
      while (this.bytes > this.maxBytes) this.evictOldest();
    }
  }

  add(key: string, value: unknown, ttl?: number): boolean {
    if (this.live(key) !== undefined) return false;
    this.set(key, value, ttl);
    return true;
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    const expiry = this.expiries[slot];
    this.remove(slot);
    return expiry === 0 || expiry > now();
  }

  /** Deletes `key` only if it holds `expected` (a lock's token). */
  deleteIfEquals(key: string, expected: string): boolean {
    const slot = this.live(key);
    if (slot === undefined || this.values[slot] !== expected) return false;
    this.remove(slot);
    return true;
  }

  getMany(keys: readonly string[]): unknown[] {
    return keys.map((key) => this.get(key));
  }

  setMany(entries: CacheEntries, ttl?: number): void {
    for (const [key, value] of entriesOf(entries)) this.set(key, value, ttl);
  }

  deleteMany(keys: readonly string[]): number {
    let deleted = 0;
    for (const key of keys) if (this.delete(key)) deleted++;
    return deleted;
  }

  /** Drops every entry and gives the arrays' memory back. */
  clear(): void {
    this.slots.clear();
    this.keys = [];
    this.values = [];
    this.expiries = new Float64Array(0);
    this.sizes = undefined;
    this.older = new Uint32Array(0);
    this.newer = new Uint32Array(0);
    this.free = RING;
    this.used = 1;
    this.bytes = 0;
  }

  increment(key: string, delta = 1): number {
    const slot = this.live(key);
    if (slot === undefined) {
      this.set(key, delta);
      return delta;
    }
    const current = this.values[slot];
    if (typeof current !== 'number') {
      throw new CacheBackendError(
        `MemoryBackend: increment ${JSON.stringify(key)} failed: the entry holds a ${typeof current}, not a number`,
        'increment',
        key,
      );
    }
    this.touch(slot);
    return (this.values[slot] = current + delta);
  }

  decrement(key: string, delta = 1): number {
    return this.increment(key, -delta);
  }

  close(): void {
    this.clear();
  }

  /** The slot of a key that has not expired; an expired one is dropped on the way. */
  private live(key: string): number | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const expiry = this.expiries[slot];
    if (expiry !== 0 && expiry <= now()) {
      this.remove(slot);
      return undefined;
    }
    return slot;
  }

  private evictOldest(): void {
    this.remove(this.newer[RING]);
    this.evicted++;
  }

  /** A free slot: one given back by `remove`, else the next never used, growing the arrays when full. */
  private allocate(): number {
    const free = this.free;
    if (free !== RING) {
      this.free = this.older[free]!;
      return free;
    }
    if (this.used >= this.older.length) this.grow();
    return this.used++;
  }

  private grow(): void {
    const capacity = Math.min(Math.max(FIRST_CAPACITY, this.older.length * 2), this.maxEntries + 1);
    this.older = grown(this.older, new Uint32Array(capacity));
    this.newer = grown(this.newer, new Uint32Array(capacity));
    this.expiries = grown(this.expiries, new Float64Array(capacity));
    if (this.maxBytes !== Infinity) this.sizes = grown(this.sizes ?? new Float64Array(0), new Float64Array(capacity));
  }

  private remove(slot: number): void {
    this.slots.delete(this.keys[slot]!);
    this.unlink(slot);
    this.keys[slot] = undefined;
    this.values[slot] = undefined;
    const sizes = this.sizes;
    if (sizes !== undefined) {
      this.bytes -= sizes[slot];
      sizes[slot] = 0;
    }
    this.older[slot] = this.free;
    this.free = slot;
  }

  /** Makes `slot` the most recently used. */
  private touch(slot: number): void {
    if (this.older[RING] === slot) return;
    this.unlink(slot);
    this.link(slot);
  }

  private link(slot: number): void {
    const older = this.older;
    const newest = older[RING];
    older[slot] = newest;
    this.newer[slot] = RING;
    this.newer[newest] = slot;
    older[RING] = slot;
  }

  private unlink(slot: number): void {
    const older = this.older;
    const newer = this.newer;
    const before = older[slot];
    const after = newer[slot];
    newer[before] = after;
    older[after] = before;
  }
}

/** `into` holding `from`'s cells first. */
function grown<T extends Uint32Array | Float64Array>(from: T, into: T): T {
  into.set(from);
  return into;
}

/** A rough size of a value graph for `maxBytes`; shared objects and cycles are counted once. */
function estimateBytes(value: unknown, seen = new Set<object>()): number {
  switch (typeof value) {
    case 'string':
      return 16 + value.length * 2;
    case 'number':
      return 8;
    case 'bigint':
      return 16;
    case 'object':
      break;
    default:
      return 4;
  }
  if (value === null || seen.has(value)) return 4;
  seen.add(value);
  if (ArrayBuffer.isView(value)) return 64 + value.byteLength;
  if (value instanceof Date) return 32;
  let bytes = 32;
  const items = value instanceof Map || value instanceof Set ? value.entries() : Object.entries(value);
  for (const [key, item] of items) bytes += 8 + estimateBytes(key, seen) + estimateBytes(item, seen);
  return bytes;
}
