import { assertSeconds, effectiveTtl, isSeconds, secondsError } from '../module/config.js';
import { entriesOf, MISS, type CacheBackend, type CacheEntries, type EntryWithTtl, type Miss } from './backend.js';

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
  /** Seconds an entry lives when `set` gets no ttl; default: the module's (300). `0` = forever. */
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
 * does: a clock read costs about a tenth of a memory hit. A real (unref'd) timer forgets the
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

/**
 * One entry, and its place in the recency list. Entries are made by one object literal (in
 * `set`), not by a class: V8 tracks how many objects from a literal outlive the young
 * generation and, as nearly all entries do, allocates them in the old one from then on. An
 * entry made with `new` was copied by two scavenges first. A/B on bench/'s miss workload: a
 * memory miss 1–9% faster (4% on average).
 */
interface Entry {
  readonly key: string;
  value: unknown;
  /** Absolute expiry in ms since the epoch (see `now`), 0 = never. */
  expiry: number;
  /** The estimate counted against `maxBytes`; 0 when there is no such limit. */
  size: number;
  /** The newer and older neighbours in the recency list, null at its ends. */
  newer: Entry | null;
  older: Entry | null;
}

/**
 * An in-process LRU cache with TTLs. Values are kept by reference (no copy, no serialization).
 * Every operation is synchronous, so a synchronous method cached here stays synchronous.
 *
 * Each key maps to one Entry that is also a node of the recency list: a hit is one Map lookup
 * and a few pointer writes, a new key one small object. Parallel arrays indexed by slot (as
 * lru-cache keeps) made every new key append to six arrays, ~150 ns more per miss.
 */
export class MemoryBackend implements CacheBackend {
  readonly synchronous = true;

  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly defaultTtl: number | undefined;

  private readonly entries = new Map<string, Entry>();
  /** Most recently used; the list runs `head.older` … down to `tail`, the next to evict. */
  private head: Entry | null = null;
  private tail: Entry | null = null;
  private bytes = 0;

  constructor(options: MemoryBackendOptions = {}) {
    const { maxEntries = 10_000, maxBytes = Infinity, defaultTtl } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`MemoryBackend: \`maxEntries\` must be a whole number ≥ 1, got ${String(maxEntries)}`);
    }
    if (typeof maxBytes !== 'number' || !(maxBytes > 0)) {
      throw new TypeError(`MemoryBackend: \`maxBytes\` must be a number of bytes > 0, got ${String(maxBytes)}`);
    }
    if (defaultTtl !== undefined) assertSeconds(defaultTtl, 'MemoryBackend: `defaultTtl`');
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.defaultTtl = defaultTtl;
  }

  /** How many entries are held (expired ones included until they are touched or evicted). */
  get size(): number {
    return this.entries.size;
  }

  lookup(key: string): unknown {
    const entry = this.live(key);
    if (entry === undefined) return MISS;
    this.touch(entry);
    return entry.value;
  }

  /**
   * The value and the seconds it has left (`0`: never expires), without counting as a use.
   * For tiers built on this one (a `TieredBackend` keeps the copy it had when a write fails).
   */
  peekWithTtl(key: string): EntryWithTtl | Miss {
    const entry = this.live(key);
    if (entry === undefined) return MISS;
    const expiry = entry.expiry;
    return { value: entry.value, ttl: expiry === 0 ? 0 : Math.max(expiry - Date.now(), 1) / 1000 };
  }

  get(key: string): unknown {
    const value = this.lookup(key);
    return value === MISS ? undefined : value;
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  set(key: string, value: unknown, ttl?: number): void {
    const seconds = effectiveTtl(ttl, this.defaultTtl);
    if (!isSeconds(seconds)) throw secondsError(seconds, `MemoryBackend.set('${key}'): ttl`);
    const expiry = seconds === 0 ? 0 : now() + seconds * 1000;
    const size = this.maxBytes === Infinity ? 0 : estimateBytes(value);
    const entry = this.entries.get(key);
    if (size > this.maxBytes) {
      if (entry !== undefined) this.remove(entry);
      return;
    }
    if (entry === undefined) {
      if (this.entries.size >= this.maxEntries) this.remove(this.tail!);
      const added: Entry = { key, value, expiry, size, newer: null, older: null };
      this.entries.set(key, added);
      this.link(added);
    } else {
      this.touch(entry);
      entry.value = value;
      entry.expiry = expiry;
      this.bytes -= entry.size;
      entry.size = size;
    }
    this.bytes += size;
    while (this.bytes > this.maxBytes) this.remove(this.tail!);
  }

  add(key: string, value: unknown, ttl?: number): boolean {
    if (this.live(key) !== undefined) return false;
    this.set(key, value, ttl);
    return true;
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.remove(entry);
    return entry.expiry === 0 || entry.expiry > now();
  }

  /** Deletes `key` only if it holds `expected` (a lock's token). */
  deleteIfEquals(key: string, expected: string): boolean {
    const entry = this.live(key);
    if (entry === undefined || entry.value !== expected) return false;
    this.remove(entry);
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

  clear(): void {
    this.entries.clear();
    this.head = this.tail = null;
    this.bytes = 0;
  }

  increment(key: string, delta = 1): number {
    const entry = this.live(key);
    if (entry === undefined) {
      this.set(key, delta);
      return delta;
    }
    const current = entry.value;
    if (typeof current !== 'number') {
      throw new TypeError(`MemoryBackend.increment('${key}'): the entry holds a ${typeof current}, not a number`);
    }
    this.touch(entry);
    return (entry.value = current + delta);
  }

  decrement(key: string, delta = 1): number {
    return this.increment(key, -delta);
  }

  close(): void {
    this.clear();
  }

  /** The entry of a key that has not expired; an expired one is dropped on the way. */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const expiry = entry.expiry;
    if (expiry !== 0 && expiry <= now()) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.key);
    this.unlink(entry);
    this.bytes -= entry.size;
  }

  /** Makes `entry` the most recently used. */
  private touch(entry: Entry): void {
    if (entry === this.head) return;
    this.unlink(entry);
    this.link(entry);
  }

  private link(entry: Entry): void {
    entry.older = this.head;
    entry.newer = null;
    if (this.head !== null) this.head.newer = entry;
    this.head = entry;
    this.tail ??= entry;
  }

  private unlink(entry: Entry): void {
    const { older, newer } = entry;
    if (newer === null) this.head = older;
    else newer.older = older;
    if (older === null) this.tail = newer;
    else older.newer = newer;
  }
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
