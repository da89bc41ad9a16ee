import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { CacheArgumentError, CacheConfigError } from '../errors.js';
import type { ServerAddress } from '../channels.js';
import { entriesOf, MISS, type CacheEntries, type EntryWithTtl, type Miss } from './backend.js';
import { FailoverGuard } from './failover-guard.js';
import { keyBytes } from './key-bytes.js';
import { ReadBatch } from './read-batch.js';
import { ignore } from '../maybe-promise.js';
import { connect, watchRefusals, type RedisConnectionOptions } from './redis-connection.js';
import { RemoteBackend, SWAP_ATTEMPTS, withDeadline, type RemoteBackendOptions } from './remote.js';
import { SwapCounters, sums } from './swap-counters.js';

/** Where the cache is (see {@link RedisConnectionOptions}), plus hoard's remote-backend options. */
export interface RedisBackendOptions extends RemoteBackendOptions, RedisConnectionOptions {}

/** A Lua script and its SHA-1, the name Redis caches it under. */
interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Adds ARGV[1] to the number at KEYS[1] in one step on the server. Values written by `set` are
 * serializer-encoded; the default serializer stores a finite number as its JSON text, which
 * `tonumber` reads, so a number stored by `set` can be incremented and the result reads back
 * through the serializer. A new counter gets ARGV[2] ms of life (0 = none); an existing one keeps
 * its TTL. `%.17g` writes the double exactly, as JavaScript's `a + b` would compute it.
 */
const INCREMENT = script(`
local current = redis.call('GET', KEYS[1])
local value = tonumber(ARGV[1])
if current then
  local stored = tonumber(current)
  if stored == nil then return redis.error_reply('ERR the stored value is not a number') end
  value = stored + value
end
if value ~= value or value == math.huge or value == -math.huge then
  return redis.error_reply('ERR the result is not a finite number')
end
local text = string.format('%.17g', value)
if current then
  redis.call('SET', KEYS[1], text, 'KEEPTTL')
elseif ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], text, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], text)
end
return text
`);

/**
 * Writes ARGV[2] to KEYS[1] only while it holds exactly ARGV[1] (`''`: only while it is absent),
 * keeping its TTL (ARGV[3] `keep`) or with ARGV[3] ms (0 = none): the compare-and-swap by which
 * signed counters are incremented, since the server cannot sign a sum itself.
 */
const SWAP = script(`
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and current) or (ARGV[1] ~= '' and current ~= ARGV[1]) then return 0 end
if ARGV[3] == 'keep' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`);

/** Deletes KEYS[1] only while it holds exactly ARGV[1]: releases a lock without removing a successor's. */
const DELETE_IF_EQUALS = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * The entries at KEYS and their remaining TTLs, read in one step: the MGET's answers (`false`
 * for a missing key, which reaches the client as a nil or, over RESP3, a boolean), then each
 * key's PTTL. One command for a tick's tiered reads instead of a GET and a PTTL per key, and
 * the TTL is read with the value, so no expiry can fall between the two.
 */
const READ_WITH_TTL = script(`
local found = redis.call('MGET', unpack(KEYS))
local count = #KEYS
for i = 1, count do found[count + i] = redis.call('PTTL', KEYS[i]) end
return found
`);

/** An entry's bytes (null when absent) and its PTTL reply, as READ_WITH_TTL answers for one key. */
type WithTtl = readonly [data: Buffer | null, ms: number];

/** Keys fetched per SCAN step of `clear`: large enough to be quick, small enough not to block Redis. */
const SCAN_COUNT = 1000;
/** Redis glob characters in a prefix must match literally in `SCAN MATCH`. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Whole milliseconds for `PX`; never 0, which Redis refuses (and which would not mean "forever"). */
function milliseconds(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * A cache in Redis (≥ 6) through ioredis, shared by every process that uses the same server and
 * `prefix`. TTLs are stored with millisecond precision in the same command as the value.
 *
 * `clear()` removes the keys under `prefix` on every master (SCAN + UNLINK, never KEYS or
 * FLUSHDB), so it requires a non-empty `prefix`.
 */
export class RedisBackend extends RemoteBackend {
  /** The ioredis client in use: the one given (an ioredis 5 client too, typed as 6), or the one the backend made. */
  readonly client: Redis | Cluster;
  private readonly ownsClient: boolean;
  private readonly stopWatching: () => void;
  private readonly guard: FailoverGuard | undefined;
  /**
   * The lookups of one tick, as one MGET (docs/backends.md has the figures). A cluster refuses
   * MGET across slots, so there each lookup is a GET of its own.
   */
  private readonly reads = new ReadBatch<Buffer | null, string | Buffer>((rawKeys) =>
    this.read(() => this.client.mgetBuffer(rawKeys)),
  );
  /** The same for the reads of a tiered backend, which also need the remaining TTLs: one READ_WITH_TTL per tick. */
  private readonly readsWithTtl = new ReadBatch<WithTtl, string | Buffer>((rawKeys) =>
    this.read(() => this.readWithTtl(rawKeys)),
  );
  private readonly signedCounters = new SwapCounters((key, deltas) => this.swapCounter(key, deltas));
  /** Whether the connection is corked until the end of this tick (see `sending`). */
  private corked = false;

  constructor(options: RedisBackendOptions = {}) {
    super('RedisBackend', options);
    const {
      client,
      url,
      prefix: _p,
      serializer: _s,
      timeout: _t,
      defaultTtl: _d,
      compression: _c,
      integrity: _i,
      encryption: _e,
      ...ioredisOptions
    } = options;
    if (typeof keyBytes(this.prefix) !== 'string') {
      // A lone surrogate in the prefix could pair with one at the start of a key, and then
      // `clear()` could not find that key under the prefix's bytes.
      throw new CacheArgumentError('RedisBackend: prefix must be well-formed Unicode (it holds a lone surrogate)');
    }
    if ('keyPrefix' in ioredisOptions || client?.options.keyPrefix) {
      throw new CacheArgumentError("RedisBackend: use the backend's `prefix` option instead of ioredis' `keyPrefix`");
    }
    const connection = connect(client, url, ioredisOptions, this.timeout * 1000);
    this.client = connection.client;
    this.ownsClient = connection.owned;
    const commandTimeout = connection.settings?.commandTimeout;
    this.clientBoundsRequests = typeof commandTimeout === 'number' && commandTimeout <= this.timeout * 1000;
    this.stopWatching = watchRefusals(this.client, (reason) => this.refused(reason));
    // A cluster fails over node by node, with its own redirections: the guard follows one connection.
    this.guard = this.client.isCluster
      ? undefined
      : new FailoverGuard(
          this.client as Redis,
          (keys) => (this.client as Redis).unlink(keys.map((key) => this.serverKey(key))),
          (error) => this.reportFault(error, 'reconnect'),
        );
  }

  /** Runs a read now, or after what a lost connection may have lost is deleted (see FailoverGuard). */
  private read<T>(work: () => Promise<T>): Promise<T> {
    return this.guard === undefined ? work() : this.guard.read(work);
  }

  /** A cluster spreads keys over its masters: only the system is named. */
  protected override addressOf(): ServerAddress {
    if (this.client.isCluster) return { system: 'redis' };
    const { host, port } = (this.client as Redis).options;
    return { system: 'redis', address: host, port };
  }

  lookup(key: string): Promise<unknown> {
    const rawKey = this.serverKey(key);
    return this.attempt(
      'get',
      key,
      () => (this.client.isCluster ? this.client.getBuffer(rawKey) : this.reads.read(rawKey)),
      (data) => (data === null ? MISS : this.decode(key, data)),
    );
  }

  /**
   * The entry and its remaining TTL: what a tiered memory copy needs to expire in step. The
   * lookups of one tick go out as one READ_WITH_TTL; on a cluster, which refuses multi-key
   * commands across slots, each is a GET and a PTTL, pipelined.
   */
  lookupWithTtl(key: string): Promise<EntryWithTtl | Miss> {
    const rawKey = this.serverKey(key);
    return this.attempt(
      'get',
      key,
      () =>
        this.client.isCluster
          ? Promise.all([this.client.getBuffer(rawKey), this.client.pttl(rawKey)])
          : this.readsWithTtl.read(rawKey),
      ([data, ms]): EntryWithTtl | Miss => {
        // PTTL -2: the key expired between the two commands of a cluster's pair; -1: it has no expiry.
        if (data === null || ms === -2) return MISS;
        const value = this.decode(key, data);
        return value === MISS ? MISS : { value, ttl: ms > 0 ? ms / 1000 : 0 };
      },
    );
  }

  private async readWithTtl(rawKeys: readonly (string | Buffer)[]): Promise<WithTtl[]> {
    const { client } = this;
    const reply = (await this.evaluate(READ_WITH_TTL, (body, byDigest) =>
      client.callBuffer(byDigest ? 'EVALSHA' : 'EVAL', body, rawKeys.length, ...rawKeys),
    )) as unknown[];
    const count = rawKeys.length;
    const answers: WithTtl[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const data = reply[i];
      answers[i] = [Buffer.isBuffer(data) ? data : null, Number(reply[count + i])];
    }
    return answers;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    await this.attempt('set', key, () => this.store(key, this.encode(key, value, seconds), seconds));
  }

  async add(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const seconds = this.ttlOf(ttl);
    return this.attempt(
      'add',
      key,
      async () => (await this.store(key, this.encode(key, value, seconds), seconds, true)) === 'OK',
    );
  }

  delete(key: string): Promise<boolean> {
    this.guard?.wrote(key);
    return this.attempt('delete', key, async () => Number(await this.client.unlink(this.serverKey(key))) === 1);
  }

  has(key: string): Promise<boolean> {
    return this.attempt('has', key, async () => Number(await this.read(() => this.client.exists(this.serverKey(key)))) === 1);
  }

  getMany(keys: readonly string[]): Promise<unknown[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.attempt('getMany', undefined, async () => {
      const raw = keys.map((key) => this.serverKey(key));
      // A cluster refuses MGET across slots; single GETs are routed per key (and pipelined).
      const found = this.client.isCluster
        ? await Promise.all(raw.map((rawKey) => this.client.getBuffer(rawKey)))
        : await this.read(() => this.client.mgetBuffer(raw));
      return found.map((data, index) => {
        const value = data === null ? MISS : this.readableOrMiss('getMany', () => this.decode(keys[index], data));
        return value === MISS ? undefined : value;
      });
    });
  }

  async setMany(entries: CacheEntries, ttl?: number): Promise<void> {
    const seconds = this.ttlOf(ttl);
    // Encode everything first, so an unserializable value stores nothing rather than a part.
    const encoded = Array.from(entriesOf(entries), ([key, value]) => [key, this.encode(key, value, seconds)] as const);
    await this.attempt('setMany', undefined, () => Promise.all(encoded.map(([key, data]) => this.store(key, data, seconds))));
  }

  deleteMany(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return Promise.resolve(0);
    for (const key of keys) this.guard?.wrote(key);
    return this.attempt('deleteMany', undefined, async () => {
      const raw = keys.map((key) => this.serverKey(key));
      if (!this.client.isCluster) return Number(await this.client.unlink(raw));
      const deleted = await Promise.all(raw.map((rawKey) => this.client.unlink(rawKey)));
      return deleted.reduce<number>((sum, count) => sum + Number(count), 0);
    });
  }

  /** Removes every key under `prefix` on every master; each SCAN or UNLINK step is bounded by `timeout`. */
  async clear(): Promise<void> {
    if (this.prefix === '') {
      throw new CacheConfigError(
        'RedisBackend: clear() needs a `prefix` (e.g. `new RedisBackend({ prefix: "myapp:" })`); ' +
          "without one it would remove every key on the server, including other applications'.",
      );
    }
    let masters: Redis[] = [this.client as Redis];
    if (this.client.isCluster) {
      const cluster = this.client as Cluster;
      // Until the cluster is ready its node list may be empty; any command waits for that.
      if (cluster.status !== 'ready') await this.attempt('clear', undefined, () => cluster.ping());
      masters = cluster.nodes('master');
    }
    await Promise.all(masters.map((node) => this.clearNode(node)));
  }

  private async clearNode(node: Redis): Promise<void> {
    const match = `${globEscape(this.prefix)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.attempt('clear', undefined, () =>
        node.scanBuffer(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT),
      );
      cursor = next.toString();
      if (keys.length === 0) continue;
      // Cluster nodes refuse multi-key commands across slots, so there each key goes alone.
      await this.attempt('clear', undefined, async () => {
        if (this.client.isCluster) await Promise.all(keys.map((key) => node.unlink(key)));
        else await node.unlink(keys);
      });
    } while (cursor !== '0');
  }

  async increment(key: string, delta = 1): Promise<number> {
    this.assertDelta(delta);
    const seconds = this.ttlOf(undefined);
    const ms = String(seconds === 0 ? 0 : milliseconds(seconds));
    if (this.codec.protects) return this.attempt('increment', key, () => this.signedCounters.add(key, delta));
    return this.attempt('increment', key, async () => Number(await this.run(INCREMENT, key, String(delta), ms)));
  }

  /**
   * Read, check, add `deltas` in order and sign in JavaScript, then write only if the entry is
   * still what was read (SWAP), else again: a signed counter keeps its signature and its TTL.
   * Resolves with the value after each delta.
   */
  private async swapCounter(key: string, deltas: readonly number[]): Promise<number[]> {
    const seconds = this.ttlOf(undefined);
    for (let attempt = 1; attempt <= SWAP_ATTEMPTS; attempt++) {
      const stored = await this.client.getBuffer(this.serverKey(key));
      const current = stored === null ? MISS : this.decode(key, stored);
      const values = sums(current, deltas);
      const next = values[values.length - 1];
      const ttl = current === MISS ? seconds : this.signedTtlOf(stored!);
      const expiry = current === MISS ? String(seconds === 0 ? 0 : milliseconds(seconds)) : 'keep';
      if (Number(await this.run(SWAP, key, stored ?? '', this.encode(key, next, ttl), expiry)) === 1) return values;
    }
    throw new Error(`the value kept changing during ${SWAP_ATTEMPTS} attempts to add to it`);
  }

  /** Deletes `key` only if it holds `expected` (as `set` would store it), in one step on the server. */
  deleteIfEquals(key: string, expected: string): Promise<boolean> {
    if (this.codec.protects) return this.attempt('deleteIfEquals', key, () => this.deleteIfDecodesTo(key, expected));
    return this.attempt(
      'deleteIfEquals',
      key,
      async () => Number(await this.run(DELETE_IF_EQUALS, key, this.encode(key, expected, 0))) === 1,
    );
  }

  /**
   * A signed or encrypted entry differs from a new encoding of the same value (its expiry, its
   * nonce), so the stored bytes are read and checked here, then deleted only if still unchanged.
   */
  private async deleteIfDecodesTo(key: string, expected: string): Promise<boolean> {
    const stored = await this.client.getBuffer(this.serverKey(key));
    if (stored === null || this.decode(key, stored) !== expected) return false;
    return Number(await this.run(DELETE_IF_EQUALS, key, stored)) === 1;
  }

  /** Runs a script on the key's server (see {@link evaluate}). */
  private run(code: Script, key: string, ...args: (string | Buffer)[]): Promise<unknown> {
    const rawKey = this.serverKey(key);
    this.guard?.wrote(key);
    const { client } = this;
    return this.evaluate(code, (body, byDigest) =>
      byDigest ? client.evalsha(body, 1, rawKey, ...args) : client.eval(body, 1, rawKey, ...args),
    );
  }

  /**
   * Runs a script by SHA, sending the script itself only when the server lacks it: `send` is
   * given the SHA (`byDigest`) or, after a NOSCRIPT (first use on this server, or after SCRIPT
   * FLUSH), the script, which EVAL caches.
   */
  private async evaluate(code: Script, send: (body: string, byDigest: boolean) => Promise<unknown>): Promise<unknown> {
    try {
      return await send(code.sha, true);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return send(code.lua, false);
    }
  }

  /** Quits the connection the backend made and waits until it is closed; a client given ready-made is left open. */
  async close(): Promise<void> {
    const client = this.client;
    this.stopWatching();
    this.guard?.stop();
    if (!this.ownsClient || client.status === 'end') return;
    if (client.status !== 'ready') {
      // Not connected (the server is down, or still being reached): nothing to flush, nobody to QUIT.
      client.disconnect();
      return;
    }
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    // QUIT lets pending replies arrive first; its own failure is covered by waiting for 'end'.
    client.quit().catch(ignore);
    // A dead or hung server (or one between reconnect attempts) gets no more than `timeout`.
    await withDeadline(ended, this.timeout * 1000, () => new Error('QUIT got no answer')).catch(ignore);
    // Also after a QUIT: only disconnect() closes the connections ioredis' failover detector
    // keeps to every sentinel, which would otherwise keep the process alive.
    client.disconnect();
  }

  /**
   * Without auto-pipelining each command would be a socket write of its own: the connection is
   * corked from the tick's first command until its code and microtasks have run, so the tick's
   * commands leave in one write, in the order they were given. (A client of your own that
   * auto-pipelines writes at `setImmediate`, after the cork is gone: it is left as it is.)
   */
  protected override sending(): void {
    const client = this.client;
    if (this.corked || client.isCluster || client.status !== 'ready') return;
    const stream = (client as Redis).stream;
    stream.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  /** The key on the server, byte-exact (see {@link keyBytes}). */
  private serverKey(key: string): string | Buffer {
    return keyBytes(this.rawKey(key));
  }

  /** One SET with the TTL in the same command (never SET then EXPIRE); `onlyIfAbsent` adds NX. */
  private store(key: string, data: Buffer | string, seconds: number, onlyIfAbsent = false): Promise<'OK' | null> {
    const rawKey = this.serverKey(key);
    this.guard?.wrote(key);
    const { client } = this;
    if (seconds === 0) return onlyIfAbsent ? client.set(rawKey, data, 'NX') : client.set(rawKey, data);
    const ms = milliseconds(seconds);
    return onlyIfAbsent ? client.set(rawKey, data, 'PX', ms, 'NX') : client.set(rawKey, data, 'PX', ms);
  }
}
