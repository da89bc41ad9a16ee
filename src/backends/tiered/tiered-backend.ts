import type { CacheBus, Invalidation } from '../../bus/bus.js';
import { CacheArgumentError, CacheValueTooLargeError } from '../../errors.js';
import { busChannel, l1DroppedChannel } from '../../channels.js';
import { ignore } from '../../maybe-promise.js';
import {
  entriesOf,
  MISS,
  valueOf,
  type BackendContext,
  type CacheBackend,
  type CacheEntries,
  type FaultListener,
  type LookupWithTtl,
  type MaybePromise,
  type EntryWithTtl,
  type Miss,
} from '../backend.js';
import type { MemoryBackend } from '../memory.js';
import { assertPositiveSeconds, assertSeconds, effectiveTtl } from '../ttl.js';
import { FillGuard, type Watch } from './fill-guard.js';

/** Options of {@link TieredBackend}: a memory tier in front of a shared one, and a bus between processes. */
export interface TieredBackendOptions {
  /** The tier in this process, read first: a `MemoryBackend`. Closed with the tiered backend. */
  l1: MemoryBackend;
  /** The shared tier every process reads and writes: a `RedisBackend` or `MemcachedBackend`. Closed with the tiered backend. */
  l2: CacheBackend;
  /**
   * Tells other processes to drop their L1 copy of what this one writes or deletes, and this one
   * what they do: a `RedisBus`. Closed with the tiered backend; one bus per tiered backend.
   * Default: none, and then an L1 copy may be out of date for up to `l1Ttl`.
   */
  bus?: CacheBus;
  /**
   * The most seconds a copy lives in L1 (less when the entry's own TTL is shorter); bounds how
   * long a missed invalidation can show, and is how long a copy read from an L2 that cannot tell
   * the remaining TTL is kept. Must be > 0. Default 60. While the bus is down, at most 1 s.
   */
  l1Ttl?: number;
}

const DEFAULT_L1_TTL = 60;
/**
 * The most seconds a new L1 copy lives while the bus is down (or not yet connected): other
 * processes' writes go unheard then, so a copy may be out of date for at most this long.
 */
const L1_TTL_WHILE_BUS_DOWN = 1;

const EVERYTHING: Invalidation = Object.freeze({ clear: true } as const);

/** What an L2 read found: the value, and its remaining TTL when the L2 can tell. */
type Found = { value: unknown; ttl?: number } | Miss;

/** What a write keeps in L1 once L2 has it: the entries, given the write's result, and their ttl. */
interface Keep<T> {
  entries(result: T): Iterable<readonly [string, unknown]>;
  ttl: number;
}

/**
 * A memory tier (L1) in front of a shared tier (L2), with an optional bus so that a write or
 * delete in one process removes the L1 copy in every other.
 *
 * Reads try L1, then L2, copying an L2 hit into L1. Writes go to L2 first, then L1, then the bus.
 * L2 is the truth: when an L2 write fails, L1 is not given the new value (so it never holds what
 * other processes cannot see), keeps the copy it had, and the write rejects. Other processes only
 * ever drop their copy on a message, never take a value from it.
 */
export class TieredBackend implements CacheBackend {
  readonly synchronous = false;
  /** The memory tier of this process; see {@link TieredBackendOptions.l1}. */
  readonly l1: MemoryBackend;
  /** The shared tier; see {@link TieredBackendOptions.l2}. */
  readonly l2: CacheBackend;
  /** The invalidation bus, if any; see {@link TieredBackendOptions.bus}. */
  readonly bus: CacheBus | undefined;
  /** Seconds; see {@link TieredBackendOptions.l1Ttl}. */
  readonly l1Ttl: number;
  /**
   * Present when `l2` has it (Redis, Memcached): deletes `key` only if it holds `expected`
   * (the lock of `@Cached({ lock: true })`), dropping the L1 copies like any delete.
   */
  readonly deleteIfEquals?: (key: string, expected: string) => Promise<boolean>;
  /** Present when `l2` has it: the shared entry and its remaining ttl, read from L2, the truth. */
  readonly lookupWithTtl?: (key: string) => Promise<EntryWithTtl | Miss>;
  private readonly withTtl: LookupWithTtl | undefined;
  private readonly fills = new FillGuard();
  /** The L2 read under way for a key, by `lookup`, with the watch that tells whether it is still current. */
  private readonly reading = new Map<string, { readonly watch: Watch; readonly read: Promise<unknown> }>();
  private context: BackendContext | undefined;

  constructor(options: TieredBackendOptions) {
    const { l1, l2, bus, l1Ttl = DEFAULT_L1_TTL } = options ?? ({} as Partial<TieredBackendOptions>);
    // Structural, not instanceof, so that a MemoryBackend from a second copy of the package passes.
    if (l1?.synchronous !== true || typeof l1.lookup !== 'function' || typeof l1.peekWithTtl !== 'function') {
      throw new CacheArgumentError(
        'TieredBackend: `l1` must be a MemoryBackend (the tier reads its copies back with their remaining ttl), ' +
          'e.g. new MemoryBackend({ maxEntries: 10_000 })',
      );
    }
    if (typeof l2?.lookup !== 'function' || typeof l2.set !== 'function') {
      throw new CacheArgumentError('TieredBackend: `l2` must be a shared CacheBackend, e.g. new RedisBackend({ url })');
    }
    if (bus !== undefined && (typeof bus?.listen !== 'function' || typeof bus.publish !== 'function')) {
      throw new CacheArgumentError('TieredBackend: `bus` must be a CacheBus, e.g. new RedisBus({ url })');
    }
    assertPositiveSeconds(l1Ttl, 'TieredBackend: `l1Ttl`');
    this.l1 = l1;
    this.l2 = l2;
    this.bus = bus;
    this.l1Ttl = l1Ttl;
    const deleteIfEquals = l2.deleteIfEquals;
    if (deleteIfEquals !== undefined) {
      this.deleteIfEquals = (key, expected) => this.write({ keys: [key] }, () => deleteIfEquals.call(l2, key, expected));
    }
    const withTtl =
      typeof (l2 as Partial<LookupWithTtl>).lookupWithTtl === 'function' ? (l2 as unknown as LookupWithTtl) : undefined;
    this.withTtl = withTtl;
    if (withTtl !== undefined) this.lookupWithTtl = (key) => withTtl.lookupWithTtl(key);
    bus?.listen({
      invalidated: (invalidation) => {
        if (busChannel.hasSubscribers) busChannel.publish({ instance: this, direction: 'received' });
        this.dropOnNotice(invalidation);
      },
      // Messages sent while the bus was away are lost: any copy may be out of date.
      connected: () => this.dropOnNotice(EVERYTHING),
    });
  }

  /** Takes the module's context (see CacheBackend.attach) and hands it to both tiers. */
  attach(context: BackendContext): void {
    this.context = context;
    this.l1.attach(context);
    this.l2.attach?.(context);
  }

  lookup(key: string): Promise<unknown> {
    const local = this.l1.lookup(key);
    if (local !== MISS) return Promise.resolve(local);
    const withTtl = this.withTtl;
    if (withTtl === undefined) return this.readThrough([key]).then((found) => found[0]);
    // A read of the key under way that nothing invalidated since it was sent answers this lookup
    // too: what a new read would find, but for a change no invalidation has announced yet, which
    // an L1 copy could show as well. Many calls in a tick check the same records.
    const joined = this.reading.get(key);
    if (joined !== undefined && this.fills.current(joined.watch)) return joined.read;
    // readThrough for one key, without its arrays and async steps: a tick's L1 misses each take
    // this path, and their L2 reads leave together (RedisBackend batches them).
    const watch = this.fills.watch(key);
    const done = (): boolean => {
      if (this.reading.get(key)?.watch === watch) this.reading.delete(key);
      return this.fills.release(watch);
    };
    const read = withTtl.lookupWithTtl(key).then(
      (found) => {
        const current = done();
        if (found === MISS) return MISS;
        if (current) this.l1.set(key, found.value, this.l1TtlFor(found.ttl));
        return found.value;
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
    this.reading.set(key, { watch, read });
    return read;
  }

  /** The L1 copy of `key`, or MISS: what `lookup` answers without a round trip. */
  peek(key: string): unknown {
    return this.l1.lookup(key);
  }

  async get(key: string): Promise<unknown> {
    return valueOf(await this.lookup(key));
  }

  async has(key: string): Promise<boolean> {
    return this.l1.has(key) || (await this.l2.has(key));
  }

  async getMany(keys: readonly string[]): Promise<unknown[]> {
    const values = keys.map((key) => this.l1.lookup(key));
    const missing = keys.filter((_, index) => values[index] === MISS);
    if (missing.length > 0) {
      const found = await this.readThrough(missing);
      let next = 0;
      for (let index = 0; index < values.length; index++) if (values[index] === MISS) values[index] = found[next++];
    }
    return values.map(valueOf);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    return this.write({ keys: [key] }, () => this.l2.set(key, value, ttl), { entries: () => [[key, value]], ttl: seconds });
  }

  async add(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const seconds = this.ttlOf(ttl);
    return this.write({ keys: [key] }, () => this.l2.add(key, value, ttl), {
      entries: (added) => (added ? [[key, value]] : []),
      ttl: seconds,
    });
  }

  async setMany(entries: CacheEntries, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    const pairs = Array.from(entriesOf(entries));
    const keys = pairs.map(([key]) => key);
    return this.write({ keys }, () => this.l2.setMany(pairs, ttl), { entries: () => pairs, ttl: seconds });
  }

  delete(key: string): Promise<boolean> {
    return this.write({ keys: [key] }, () => this.l2.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<number> {
    return this.write({ keys }, () => this.l2.deleteMany(keys));
  }

  /** Clears L2 (its own prefix only), this L1, and every other process's L1. */
  clear(): Promise<void> {
    return this.write(EVERYTHING, () => this.l2.clear());
  }

  /** Counts in L2 (atomic there); the L1 copies, here and elsewhere, are dropped. */
  increment(key: string, delta?: number): Promise<number> {
    return this.write({ keys: [key] }, () => this.l2.increment(key, delta));
  }

  decrement(key: string, delta?: number): Promise<number> {
    return this.write({ keys: [key] }, () => this.l2.decrement(key, delta));
  }

  /** Passes `listener` on to L2's and the bus's faults (a refused connection, a channel it cannot subscribe to). */
  onFault(listener: FaultListener): () => void {
    const detach = [this.l2.onFault?.(listener), this.bus?.onFault?.(listener)];
    return () => detach.forEach((stop) => stop?.());
  }

  /** Closes the bus, L1 and L2 (each of which leaves clients passed in ready-made open). */
  async close(): Promise<void> {
    this.l1.close();
    await Promise.all([this.bus?.close(), this.l2.close()]);
  }

  /** The ttl `set` will store with, validated before anything is touched. */
  private ttlOf(ttl: number | undefined): number {
    if (ttl !== undefined) assertSeconds(ttl, 'TieredBackend: ttl');
    const l2Default = (this.l2 as { defaultTtl?: unknown }).defaultTtl;
    return effectiveTtl(ttl, typeof l2Default === 'number' ? l2Default : undefined, this.context);
  }

  /**
   * Seconds an L1 copy may live: as long as the L2 entry when that is known (`0`: forever),
   * capped by `l1Ttl`, and by {@link L1_TTL_WHILE_BUS_DOWN} while the bus cannot hear other processes.
   */
  private l1TtlFor(l2Ttl: number | undefined): number {
    const bus = this.bus;
    const cap = bus !== undefined && !bus.connected ? Math.min(this.l1Ttl, L1_TTL_WHILE_BUS_DOWN) : this.l1Ttl;
    return l2Ttl === undefined || l2Ttl === 0 ? cap : Math.min(l2Ttl, cap);
  }

  /** Reads `keys` from L2 and copies the hits into L1 unless they were invalidated meanwhile; MISS for misses. */
  private async readThrough(keys: readonly string[]): Promise<unknown[]> {
    const watches = keys.map((key) => this.fills.watch(key));
    const release = (): boolean[] => watches.map((watch) => this.fills.release(watch));
    let found: Found[];
    try {
      found = await this.fetch(keys);
    } catch (error) {
      release();
      throw error;
    }
    const current = release();
    return found.map((entry, index) => {
      if (entry === MISS) return MISS;
      if (current[index]) this.l1.set(keys[index], entry.value, this.l1TtlFor(entry.ttl));
      return entry.value;
    });
  }

  private async fetch(keys: readonly string[]): Promise<Found[]> {
    const withTtl = this.withTtl;
    if (withTtl !== undefined) return Promise.all(keys.map((key) => withTtl.lookupWithTtl(key)));
    if (keys.length === 1) {
      const value = await this.l2.lookup(keys[0]);
      return [value === MISS ? MISS : { value }];
    }
    // getMany cannot tell a stored undefined from a miss; either way nothing is copied into L1.
    const values = await this.l2.getMany(keys);
    return values.map((value) => (value === undefined ? MISS : { value }));
  }

  /**
   * One write. The local copies go first, so that no read under way can put the old value back;
   * then L2; then, unless another invalidation of the same keys landed meanwhile, the new value
   * into L1; then the message to other processes. A connected bus that fails to send it rejects
   * the write (other processes may serve their old copy for up to `l1Ttl`), so the fault reaches
   * the `error` event.
   */
  private async write<T>(change: Invalidation, toL2: () => MaybePromise<T>, keep?: Keep<T>): Promise<T> {
    // The copies L1 held: a value L2 did not take leaves them in place, so that a stale value
    // stays servable while L2 is down (staleTtl's fail-safe). L2 still holds the same, unless
    // the write timed out after reaching it; either way the caller is told the write failed.
    const kept = keep !== undefined && 'keys' in change ? change.keys : [];
    const held = kept.map((key) => this.l1.peekWithTtl(key));
    this.dropLocal(change);
    const watches = kept.map((key) => this.fills.watch(key));
    let result: T;
    try {
      result = await toL2();
    } catch (error) {
      // A value too large for L2 made Memcached drop its entry: the old copy is gone there too.
      const restore = !(error instanceof CacheValueTooLargeError);
      watches.forEach((watch, at) => {
        const copy = held[at];
        if (this.fills.release(watch) && restore && copy !== undefined && copy !== MISS)
          this.l1.set(watch.key, copy.value, copy.ttl);
      });
      // A write that timed out may still have reached L2: other processes drop their copies all the same.
      this.publish(change).catch(ignore);
      throw error;
    }
    if (keep !== undefined) {
      const current = new Set(watches.filter((watch) => this.fills.release(watch)).map((watch) => watch.key));
      const ttl = this.l1TtlFor(keep.ttl);
      let written = 0;
      for (const [key, value] of keep.entries(result)) {
        written++;
        if (current.has(key)) this.l1.set(key, value, ttl);
      }
      // An `add` that found the key taken changed nothing in L2: nobody needs telling.
      if (written === 0) return result;
    }
    await this.publish(change);
    return result;
  }

  private publish(change: Invalidation): Promise<void> {
    const bus = this.bus;
    if (bus === undefined || ('keys' in change && change.keys.length === 0)) return Promise.resolve();
    let sent = bus.publish(change);
    if (busChannel.hasSubscribers) sent = sent.then(() => busChannel.publish({ instance: this, direction: 'sent' }));
    if (bus.connected) return sent;
    // A bus that is down is the degraded mode already (this process keeps its L1 copies short):
    // the message is still tried, but no write waits on a server known to be away.
    sent.catch(ignore);
    return Promise.resolve();
  }

  /** Drops L1 copies another process (or a reconnect) said may be out of date. */
  private dropOnNotice(change: Invalidation): void {
    if (!l1DroppedChannel.hasSubscribers) return this.dropLocal(change);
    const before = this.l1.size;
    this.dropLocal(change);
    const copies = before - this.l1.size;
    if (copies > 0) l1DroppedChannel.publish({ instance: this, copies });
  }

  /** Drops L1 copies and stops reads under way from copying the old value back. */
  private dropLocal(change: Invalidation): void {
    if ('clear' in change) {
      this.l1.clear();
      this.fills.invalidateAll();
      return;
    }
    for (const key of change.keys) {
      this.l1.delete(key);
      this.fills.invalidate(key);
    }
  }
}
