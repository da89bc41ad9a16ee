import { CacheArgumentError, CacheValueTooLargeError } from '../../errors.js';
import type { ServerAddress } from '../../channels.js';
import { entriesOf, MISS, type CacheEntries, type EntryWithTtl, type Miss } from '../backend.js';
import { RemoteBackend, SWAP_ATTEMPTS, type RemoteBackendOptions } from '../remote.js';
import { SwapCounters, sums } from '../swap-counters.js';
import { UNTIL_NOOP } from './connection.js';
import {
  COUNTER_FLAGS,
  counterDigits,
  counterValue,
  expiryOf,
  expiryRemaining,
  isCounterValue,
  Keyspace,
  newGeneration,
  SERIALIZED_FLAGS,
} from './keyspace.js';
import { flagOf, META_NOOP, metaArithmetic, metaDelete, metaGet, metaSet, type Chunk, type Frame } from './protocol.js';
import { HashRing, ringPosition } from './ring.js';
import { MemcachedServer } from './server.js';

export interface MemcachedBackendOptions extends RemoteBackendOptions {
  /**
   * The servers, as `'host:port'` (IPv6: `'[::1]:11211'`). Keys are spread over them by
   * consistent hashing on these names, so every process must list the same servers (in any
   * order). Needs memcached ≥ 1.6 (meta protocol).
   */
  servers: readonly string[];
  /**
   * Largest value, in bytes after serialization, that `set` sends. A larger one is not stored
   * (and the key's old value is deleted): `set` rejects with a `CacheValueTooLargeError`.
   * Default 1 MiB, memcached's default item size (`-I`); memcached itself refuses items whose
   * key, value and ~50 bytes of header exceed its limit, with the same error.
   */
  maxValueBytes?: number;
  /** Connections per server; each carries many pipelined requests. Default 2. */
  poolSize?: number;
  /**
   * Failures in a row (a connection lost or timed out with requests on it) after which a
   * server is taken out of the ring; its keys go to the other servers until it answers again
   * (retried after 0.1 s, doubling up to 1 s). Default 2.
   */
  failureThreshold?: number;
}

const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
const RETRY_DELAY_MS = { first: 100, max: 1000 };
/** Attempts of one operation when the generation keeps changing under it (concurrent clears). */
const GENERATION_ATTEMPTS = 3;

/** A batch for one server: the commands, and how many frames answer them (or `UNTIL_NOOP`). */
interface Batch {
  chunks: Chunk[];
  expect: number;
}

function single(chunks: Chunk | Chunk[]): Batch {
  return { chunks: Array.isArray(chunks) ? chunks : [chunks], expect: 1 };
}

function unexpected(frame: Frame): Error {
  return new Error(`memcached replied ${JSON.stringify(frame.line)}`);
}

function isTooLarge(frame: Frame): boolean {
  return frame.code === 'SERVER_ERROR' && frame.line.includes('too large');
}

function assertPositiveInteger(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new CacheArgumentError(`MemcachedBackend: ${what} must be a positive integer, got ${String(value)}`);
  }
}

/**
 * Memcached over its meta protocol (our own client: base64 keys, pipelining, timeouts,
 * consistent hashing; see docs/backends.md for why not a registry client).
 *
 * `clear()` never runs `flush_all`: every key carries its server's generation number for this
 * prefix, and clearing increments it, so the old entries become unreachable (memcached's LRU
 * reclaims them). Each request is sent together with a read of the generation, in the same
 * write and round trip, so a `clear()` by any process is seen by the next request of every
 * other process.
 */
export class MemcachedBackend extends RemoteBackend {
  /** Bytes; see {@link MemcachedBackendOptions.maxValueBytes}. */
  readonly maxValueBytes: number;
  /** @internal The connections to each server, in the order of `servers`. */
  readonly servers: readonly MemcachedServer[];
  private readonly keys: Keyspace;
  private readonly generationCheck: string;
  /** Servers not taken out after failures, and the ring over them (rebuilt when that changes). */
  private readonly live: Set<MemcachedServer>;
  private ring: HashRing<MemcachedServer>;
  /** The last generation seen on each server, and a read of it in progress. */
  private readonly generations = new Map<MemcachedServer, number>();
  private readonly generationReads = new Map<MemcachedServer, Promise<number>>();
  private closed = false;
  private readonly signedCounters = new SwapCounters((key, deltas) => this.addBySwapping(key, deltas, this.ttlOf(undefined)));

  constructor(options: MemcachedBackendOptions) {
    super('MemcachedBackend', options);
    const { servers, maxValueBytes = DEFAULT_MAX_VALUE_BYTES, poolSize = 2, failureThreshold = 2 } = options;
    if (!Array.isArray(servers) || servers.length === 0 || servers.some((server) => typeof server !== 'string')) {
      throw new CacheArgumentError("MemcachedBackend: servers must be a non-empty array of 'host:port' strings");
    }
    if (new Set(servers).size !== servers.length) throw new CacheArgumentError('MemcachedBackend: servers lists a server twice');
    assertPositiveInteger(maxValueBytes, 'maxValueBytes');
    assertPositiveInteger(poolSize, 'poolSize');
    assertPositiveInteger(failureThreshold, 'failureThreshold');
    this.maxValueBytes = maxValueBytes;
    this.keys = new Keyspace(this.prefix);
    this.generationCheck = metaGet(this.keys.generationToken, 'v');
    this.servers = servers.map(
      (address) =>
        new MemcachedServer(address, {
          timeoutMs: this.timeout * 1000,
          poolSize,
          failureThreshold,
          retryDelayMs: RETRY_DELAY_MS,
          // Whatever the server kept while it was out may be stale (deletes and clears went
          // elsewhere): a new generation hides it before the server is used again.
          revive: (server) => this.bumpGeneration(server).then(() => undefined),
          onDown: (server) => {
            this.live.delete(server);
            this.ring = this.ringOfLiveServers();
          },
          onUp: (server) => {
            this.live.add(server);
            this.ring = this.ringOfLiveServers();
          },
        }),
    );
    this.live = new Set(this.servers);
    this.ring = this.ringOfLiveServers();
  }

  /** The server the ring gives `key`; an operation over several keys names one only when there is one. */
  protected override addressOf(key: string | undefined): ServerAddress {
    const live = this.ring.nodes;
    let server: MemcachedServer | undefined;
    if (!this.closed && live.length > 0)
      server = key !== undefined ? this.serverFor(key) : live.length === 1 ? live[0] : undefined;
    return server === undefined ? { system: 'memcached' } : { system: 'memcached', address: server.host, port: server.port };
  }

  lookup(key: string): Promise<unknown> {
    return this.attempt(
      'get',
      key,
      () => this.onServer(this.serverFor(key), (generation) => single(metaGet(this.keys.token(generation, key), 'v f'))),
      ([frame]) => (frame.code === 'EN' ? MISS : this.unpack(key, frame)),
    );
  }

  /**
   * `mg` with the `t` flag: the value and its remaining seconds. Expiries are stored one second
   * long (see expiryOf), so that second is taken off again.
   */
  async lookupWithTtl(key: string): Promise<EntryWithTtl | Miss> {
    return this.attempt('get', key, async () => {
      const [frame] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaGet(this.keys.token(generation, key), 'v f t')),
      );
      if (frame.code === 'EN') return MISS;
      const remaining = Number(flagOf(frame, 't'));
      const value = this.unpack(key, frame);
      if (value === MISS) return MISS;
      return { value, ttl: remaining < 0 ? 0 : Math.max(remaining - 1, 0.5) };
    });
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    const expiry = expiryOf(seconds);
    const [data, flags] = this.pack(key, value, seconds);
    await this.attempt('set', key, async () => {
      if (data.length > this.maxValueBytes) {
        // The old value would be stale now; memcached drops it too when it refuses an item.
        // Best effort: the caller must learn that the value was too large, whatever else fails.
        await this.remove(key).catch(() => false);
        throw this.tooLarge('set', key, data.length);
      }
      const [frame] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaSet(this.keys.token(generation, key), data, `T${expiry} F${flags}`)),
      );
      if (frame.code !== 'HD') throw isTooLarge(frame) ? this.tooLarge('set', key, data.length) : unexpected(frame);
    });
  }

  async add(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const seconds = this.ttlOf(ttl);
    const expiry = expiryOf(seconds);
    const [data, flags] = this.pack(key, value, seconds);
    return this.attempt('add', key, async () => {
      if (data.length > this.maxValueBytes) throw this.tooLarge('add', key, data.length);
      const [frame] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaSet(this.keys.token(generation, key), data, `T${expiry} F${flags} ME`)),
      );
      if (frame.code === 'HD') return true;
      if (frame.code === 'NS') return false;
      throw isTooLarge(frame) ? this.tooLarge('add', key, data.length) : unexpected(frame);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.attempt('delete', key, () => this.remove(key));
  }

  async has(key: string): Promise<boolean> {
    return this.attempt('has', key, async () => {
      const [frame] = await this.onServer(this.serverFor(key), (generation) => single(metaGet(this.keys.token(generation, key))));
      if (frame.code === 'HD') return true;
      if (frame.code === 'EN') return false;
      throw unexpected(frame);
    });
  }

  /** One pipelined batch per server: quiet gets (misses answer nothing), ended by `mn`. */
  async getMany(keys: readonly string[]): Promise<unknown[]> {
    return this.attempt('getMany', undefined, async () => {
      const values = new Array<unknown>(keys.length).fill(undefined);
      await this.perServer(keys, async (server, indexes) => {
        const frames = await this.onServer(server, (generation) =>
          quietBatch(indexes.map((index) => metaGet(this.keys.token(generation, keys[index]), `v f q O${index}`))),
        );
        for (const frame of frames) {
          if (frame.code !== 'VA') {
            if (frame.code !== 'MN') throw unexpected(frame);
            continue;
          }
          const index = Number(flagOf(frame, 'O'));
          const value = this.readableOrMiss('getMany', () => this.unpack(keys[index], frame));
          if (value !== MISS) values[index] = value;
        }
      });
      return values;
    });
  }

  /**
   * One pipelined batch per server of quiet sets (success answers nothing). Values over
   * `maxValueBytes` are not sent (their keys' old values are deleted), the others are stored,
   * then the call rejects with a `CacheValueTooLargeError` naming one of the refused keys.
   */
  async setMany(entries: CacheEntries, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    const expiry = expiryOf(seconds);
    const keys: string[] = [];
    const packed: [Buffer, number][] = [];
    for (const [key, value] of entriesOf(entries)) {
      keys.push(key);
      packed.push(this.pack(key, value, seconds));
    }
    const oversized = keys.findIndex((_, index) => packed[index][0].length > this.maxValueBytes);
    await this.attempt('setMany', undefined, async () => {
      let refused: number | undefined;
      await this.perServer(keys, async (server, indexes) => {
        const frames = await this.onServer(server, (generation) =>
          quietBatch(
            indexes.flatMap((index) => {
              const token = this.keys.token(generation, keys[index]);
              const [data, flags] = packed[index];
              return data.length > this.maxValueBytes ? [metaDelete(token, 'q')] : metaSet(token, data, `T${expiry} F${flags} q`);
            }),
          ),
        );
        for (const frame of frames) {
          if (frame.code === 'MN' || frame.code === 'NF') continue;
          if (!isTooLarge(frame)) throw unexpected(frame);
          // Error replies carry no opaque to tell which set failed: name the batch's largest value.
          refused ??= indexes.reduce((largest, index) => (packed[index][0].length > packed[largest][0].length ? index : largest));
        }
      });
      const first = oversized >= 0 ? oversized : refused;
      if (first !== undefined) throw this.tooLarge('setMany', keys[first], packed[first][0].length);
    });
  }

  /** One pipelined batch per server of quiet deletes: only misses answer (`NF`). */
  async deleteMany(keys: readonly string[]): Promise<number> {
    return this.attempt('deleteMany', undefined, async () => {
      let deleted = 0;
      await this.perServer(keys, async (server, indexes) => {
        const frames = await this.onServer(server, (generation) =>
          quietBatch(indexes.map((index) => metaDelete(this.keys.token(generation, keys[index]), 'q'))),
        );
        let missing = 0;
        for (const frame of frames) {
          if (frame.code === 'NF') missing++;
          else if (frame.code !== 'MN') throw unexpected(frame);
        }
        deleted += indexes.length - missing;
      });
      return deleted;
    });
  }

  /** Bumps this prefix's generation on every server in the ring (a server coming back gets a new one anyway). */
  async clear(): Promise<void> {
    await this.attempt('clear', undefined, async () => {
      if (this.live.size === 0) throw this.noServer();
      await Promise.all([...this.live].map((server) => this.bumpGeneration(server)));
    });
  }

  /**
   * Integer deltas on integers: `ma`, atomic on the server. A missing key is created (`N`:
   * auto-create with the default ttl) holding `delta`; an existing one keeps its TTL. See
   * `isCounterValue` in keyspace.ts for the format. Fractions (or a stored fraction): compare-and-swap.
   */
  async increment(key: string, delta = 1): Promise<number> {
    this.assertDelta(delta);
    const seconds = this.ttlOf(undefined);
    const expiry = expiryOf(seconds);
    // Signed counters cannot be added to on the server, which cannot sign the sum.
    if (this.codec.protects) return this.attempt('increment', key, () => this.signedCounters.add(key, delta));
    return this.attempt('increment', key, async () => {
      const counted = Number.isSafeInteger(delta) ? await this.addToCounter(key, delta, expiry) : undefined;
      return counted ?? (await this.addBySwapping(key, [delta], seconds))[0];
    });
  }

  /**
   * Deletes `key` only while it still holds `expected` (the lock release of `@Cached({ lock })`):
   * `md` with the CAS value read by `mg` fails if anyone wrote the key in between.
   */
  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    return this.attempt('deleteIfEquals', key, async () => {
      const [found] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaGet(this.keys.token(generation, key), 'v f c')),
      );
      if (found.code === 'EN' || this.unpack(key, found) !== expected) return false;
      const [deleted] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaDelete(this.keys.token(generation, key), `C${flagOf(found, 'c')}`)),
      );
      if (deleted.code === 'HD') return true;
      // EX: rewritten since our read; NF: deleted or expired since.
      if (deleted.code === 'EX' || deleted.code === 'NF') return false;
      throw unexpected(deleted);
    });
  }

  /** Closes the connections once their pending requests have answered. */
  async close(): Promise<void> {
    this.closed = true;
    for (const server of this.servers) server.close();
  }

  /** `ma`; undefined when the stored value is no counter (a fraction, or not a number). */
  private async addToCounter(key: string, delta: number, expiry: number): Promise<number | undefined> {
    const flags = `N${expiry} J${counterDigits(delta)} D${Math.abs(delta)} M${delta < 0 ? 'D' : 'I'} v`;
    // NS: another client created the key between our miss and our create; now it exists.
    for (let attempt = 1; ; attempt++) {
      const [frame] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaArithmetic(this.keys.token(generation, key), flags)),
      );
      if (frame.code === 'VA') return counterValue(frame.value!);
      if (frame.code === 'CLIENT_ERROR' && frame.line.includes('non-numeric')) return undefined;
      if (frame.code !== 'NS' || attempt === 2) throw unexpected(frame);
    }
  }

  /**
   * Read, add `deltas` in order in JavaScript, write back only if nobody wrote in between (`C`:
   * compare-and-swap on the CAS value read), else again; resolves with the value after each.
   * Keeps the entry's remaining TTL (and, signed, its signed expiry).
   */
  private async addBySwapping(key: string, deltas: readonly number[], seconds: number): Promise<number[]> {
    for (let attempt = 1; attempt <= SWAP_ATTEMPTS; attempt++) {
      const [found] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaGet(this.keys.token(generation, key), 'v f t c')),
      );
      let ttl = seconds;
      let mode = `T${expiryOf(seconds)} ME`;
      const current = found.code === 'EN' ? MISS : this.unpack(key, found);
      const values = sums(current, deltas);
      const next = values[values.length - 1];
      if (current !== MISS) {
        ttl = this.signedTtlOf(found.value!);
        mode = `T${expiryRemaining(Number(flagOf(found, 't')))} C${flagOf(found, 'c')}`;
      } else if (found.code !== 'EN') {
        // Signed and past its expiry, though still on the server: replaced by a new counter.
        mode = `T${expiryOf(seconds)} C${flagOf(found, 'c')}`;
      }
      const [data, flags] = this.pack(key, next, ttl);
      const [written] = await this.onServer(this.serverFor(key), (generation) =>
        single(metaSet(this.keys.token(generation, key), data, `${mode} F${flags}`)),
      );
      if (written.code === 'HD') return values;
      // EX: changed since our read; NS: created since our miss; NF: deleted since our read.
      if (written.code !== 'EX' && written.code !== 'NS' && written.code !== 'NF') throw unexpected(written);
    }
    throw new Error(`the value kept changing during ${SWAP_ATTEMPTS} attempts to add to it`);
  }

  /** The server that owns `key` (placed by prefix + key, whatever the generation). */
  private serverFor(key: string): MemcachedServer {
    if (this.closed) throw new Error('the backend is closed');
    const ring = this.ring;
    const server = ring.nodes.length === 1 ? ring.nodes[0] : ring.locate(ringPosition(this.rawKey(key)));
    if (server === undefined) throw this.noServer();
    return server;
  }

  private noServer(): Error {
    return new Error(`no memcached server available: ${this.servers.map((server) => server.address).join(', ')} are down`);
  }

  private ringOfLiveServers(): HashRing<MemcachedServer> {
    return new HashRing(
      this.servers.filter((server) => this.live.has(server)),
      (server) => server.address,
    );
  }

  /** Groups key indexes by owning server and runs `work` for every server at once. */
  private async perServer(
    keys: readonly string[],
    work: (server: MemcachedServer, indexes: number[]) => Promise<void>,
  ): Promise<void> {
    const groups = new Map<MemcachedServer, number[]>();
    keys.forEach((key, index) => {
      const server = this.serverFor(key);
      const group = groups.get(server);
      if (group === undefined) groups.set(server, [index]);
      else group.push(index);
    });
    await Promise.all([...groups].map(([server, indexes]) => work(server, indexes)));
  }

  /**
   * Sends `build(generation)` on `server` behind a read of the prefix's generation, in one
   * write. When the generation read back is not the one the keys were built with (a clear by
   * another process, a restarted server), the batch is rebuilt and sent again: commands under
   * an old generation only touch entries nobody can reach any more. Resolves with the batch's
   * own frames.
   */
  private async onServer(server: MemcachedServer, build: (generation: number) => Batch): Promise<Frame[]> {
    for (let attempt = 1; ; attempt++) {
      const generation = this.generations.get(server) ?? (await this.readGeneration(server));
      const batch = build(generation);
      const frames = await server.exchange(
        [this.generationCheck, ...batch.chunks],
        batch.expect === UNTIL_NOOP ? UNTIL_NOOP : batch.expect + 1,
      );
      const current = frames[0];
      if (current.code === 'EN') {
        this.generations.delete(server);
      } else {
        if (current.code !== 'VA') throw unexpected(current);
        const found = Number(current.value!.toString('latin1'));
        if (found === generation) return frames.slice(1);
        this.generations.set(server, found);
      }
      if (attempt === GENERATION_ATTEMPTS) throw new Error(`the generation on ${server.address} kept changing`);
    }
  }

  /** The server's generation, created at random when missing (first use, restart, eviction). */
  private readGeneration(server: MemcachedServer): Promise<number> {
    let read = this.generationReads.get(server);
    if (read === undefined) {
      read = this.changeGeneration(server, 0).finally(() => this.generationReads.delete(server));
      this.generationReads.set(server, read);
    }
    return read;
  }

  private bumpGeneration(server: MemcachedServer): Promise<number> {
    return this.changeGeneration(server, 1);
  }

  private async changeGeneration(server: MemcachedServer, delta: 0 | 1): Promise<number> {
    const [frame] = await server.exchange([metaArithmetic(this.keys.generationToken, `N0 J${newGeneration()} D${delta} v`)], 1);
    if (frame.code !== 'VA') throw unexpected(frame);
    const generation = Number(frame.value!.toString('latin1'));
    this.generations.set(server, generation);
    return generation;
  }

  private async remove(key: string): Promise<boolean> {
    const [frame] = await this.onServer(this.serverFor(key), (generation) =>
      single(metaDelete(this.keys.token(generation, key))),
    );
    if (frame.code === 'HD') return true;
    if (frame.code === 'NF') return false;
    throw unexpected(frame);
  }

  /**
   * The bytes to store for `key` (for `seconds`) and their client flags: integers as counters
   * (unless entries are signed: memcached cannot sign what `ma` computes), the rest serialized.
   */
  private pack(key: string, value: unknown, seconds: number): [Buffer, number] {
    if (isCounterValue(value) && !this.codec.protects) return [Buffer.from(counterDigits(value), 'latin1'), COUNTER_FLAGS];
    const encoded = this.encode(key, value, seconds);
    return [typeof encoded === 'string' ? Buffer.from(encoded) : encoded, SERIALIZED_FLAGS];
  }

  /** The value of a `VA` frame for `key`; MISS for a signed entry past its expiry. */
  private unpack(key: string, frame: Frame): unknown {
    if (frame.code !== 'VA') throw unexpected(frame);
    // With signed entries, a counter is as unsigned as any plain entry: decode refuses it.
    const counter = Number(flagOf(frame, 'f')) === COUNTER_FLAGS && !this.codec.protects;
    return counter ? counterValue(frame.value!) : this.decode(key, frame.value!);
  }

  private tooLarge(operation: string, key: string, bytes: number): CacheValueTooLargeError {
    return new CacheValueTooLargeError(
      `MemcachedBackend: ${operation} ${JSON.stringify(key)}: the value is ${bytes} bytes, over the item size limit ` +
        `(maxValueBytes ${this.maxValueBytes}, or the server's -I); it was not stored`,
      operation,
      key,
    );
  }
}

/** Quiet commands followed by `mn`, which answers once all of them have. */
function quietBatch(chunks: Chunk[]): Batch {
  return { chunks: [...chunks, META_NOOP], expect: UNTIL_NOOP };
}
