/**
 * A backend written from hoard's documented extension API alone (docs/backends.md, "Writing a
 * backend"): a Map with TTLs. `conformance.test.ts` beside it runs hoard's conformance suite on it.
 */
import {
  CacheArgumentError,
  CacheBackendError,
  DEFAULT_TTL,
  MAX_TTL,
  MISS,
  type BackendContext,
  type CacheBackend,
  type CacheEntries,
} from 'hoard';

interface Entry {
  value: unknown;
  /** `Date.now()` at which the entry expires; 0 = never. */
  expiresAt: number;
}

export class MapBackend implements CacheBackend {
  /** Every operation answers at once, so a synchronous method cached here stays synchronous. */
  readonly synchronous = true;
  private readonly entries = new Map<string, Entry>();
  /** Handed over by `CacheModule.register`: the module's `defaultTtl`, read live. */
  private context: BackendContext | undefined;

  attach(context: BackendContext): void {
    this.context = context;
  }

  lookup(key: string): unknown {
    const entry = this.live(key);
    return entry === undefined ? MISS : entry.value;
  }

  get(key: string): unknown {
    return this.live(key)?.value;
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  set(key: string, value: unknown, ttl?: number): void {
    const seconds = ttl ?? this.context?.defaultTtl ?? DEFAULT_TTL;
    if (typeof seconds !== 'number' || !(seconds >= 0 && seconds <= MAX_TTL)) {
      throw new CacheArgumentError(
        `MapBackend.set: ttl must be a number of seconds from 0 to ${MAX_TTL}, got ${String(seconds)}`,
      );
    }
    this.entries.set(key, { value, expiresAt: seconds === 0 ? 0 : Date.now() + seconds * 1000 });
  }

  add(key: string, value: unknown, ttl?: number): boolean {
    if (this.has(key)) return false;
    this.set(key, value, ttl);
    return true;
  }

  delete(key: string): boolean {
    return this.live(key) !== undefined && this.entries.delete(key);
  }

  getMany(keys: readonly string[]): unknown[] {
    return keys.map((key) => this.get(key));
  }

  setMany(entries: CacheEntries, ttl?: number): void {
    const pairs = Symbol.iterator in entries ? (entries as Iterable<readonly [string, unknown]>) : Object.entries(entries);
    for (const [key, value] of pairs) this.set(key, value, ttl);
  }

  deleteMany(keys: readonly string[]): number {
    return keys.filter((key) => this.delete(key)).length;
  }

  clear(): void {
    this.entries.clear();
  }

  increment(key: string, delta = 1): number {
    const entry = this.live(key);
    if (entry === undefined) {
      this.set(key, delta);
      return delta;
    }
    if (typeof entry.value !== 'number')
      throw new CacheBackendError(`MapBackend: ${JSON.stringify(key)} holds no number`, 'increment', key);
    // An existing counter keeps its expiry.
    return (entry.value += delta);
  }

  decrement(key: string, delta = 1): number {
    return this.increment(key, -delta);
  }

  close(): void {}

  /** The entry, unless it has expired (then it is dropped on the way). */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}
