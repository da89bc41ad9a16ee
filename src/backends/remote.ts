import { CacheArgumentError, CacheBackendError, CacheError, CacheSerializationError, messageOf } from '../errors.js';
import { operationChannel, traced, type ServerAddress } from '../channels.js';
import { defaultSerializer } from '../serialization/default-serializer.js';
import type { Serializer } from '../serialization/serializer.js';
import { ValueCodec, type ValueCodecOptions } from '../serialization/value-codec.js';
import { MISS, valueOf, type BackendContext, type CacheBackend, type CacheEntries, type FaultListener } from './backend.js';
import { Deadlines } from './deadlines.js';
import { Faults } from './faults.js';
import { assertPositiveSeconds, assertSeconds, effectiveTtl, isSeconds, secondsError } from './ttl.js';

/** Options every remote backend (Redis, Memcached) takes. */
export interface RemoteBackendOptions {
  /**
   * Prepended as is to every hoard key on the server (raw key = `prefix` + hoard key), e.g.
   * `'myapp:'`. Keeps applications that share a server apart; `clear()` removes only the
   * entries under it. Default `''`.
   */
  prefix?: string;
  /** Turns values into bytes and back. Default: {@link defaultSerializer}. */
  serializer?: Serializer;
  /**
   * Seconds one operation may take before it rejects with a `CacheBackendError` (the
   * decorators then run the method: fail-open). Must be > 0. Default 0.5.
   */
  timeout?: number;
  /**
   * Seconds an entry lives when `set` is given no ttl; `0` = never expires. Default: the module's
   * `defaultTtl` once the backend is registered, `DEFAULT_TTL` (300) while it is not.
   */
  defaultTtl?: number;
  /**
   * Compress serialized values of at least `threshold` bytes with node:zlib, keeping the
   * compressed form only when it is smaller; `true` for the defaults (gzip, 1024 bytes). Entries
   * are read back whatever this option says, so it can be turned on, off or changed without a
   * flush (docs/backends.md, "Compression"). Default: off.
   */
  compression?: ValueCodecOptions['compression'];
  /**
   * `{ keys: [current, ...previous] }`: every entry is signed (HMAC-SHA256 over the key it is
   * stored under, its expiry and its bytes) and an entry that is unsigned, changed, moved to
   * another key or signed with an unknown key is a miss plus an `error` event with a
   * `CacheIntegrityError` (docs/security.md). Secrets of at least 32 bytes. Default: off.
   */
  integrity?: ValueCodecOptions['integrity'];
  /**
   * `{ keys: [current, ...previous] }`: every entry is encrypted with AES-256-GCM, with the key it
   * is stored under as associated data; what fails to decrypt is a miss plus an `error` event, as
   * with `integrity` (which it implies, and with which it can be combined while migrating).
   * Secrets of at least 32 bytes. Default: off.
   */
  encryption?: ValueCodecOptions['encryption'];
}

/** Seconds per operation of a remote backend or a bus, unless its `timeout` option says otherwise. */
export const DEFAULT_TIMEOUT = 0.5;
/** Attempts of a compare-and-swap increment while other writers keep winning. */
export const SWAP_ATTEMPTS = 20;

/**
 * Settles like `work`, or rejects with `timedOut()` after `ms` milliseconds, whichever comes
 * first: for a one-off operation (a publish, a QUIT). A backend bounds its many operations
 * with one timer between them (see Deadlines).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  // Promise.race subscribes to `work`, so its late rejection after a timeout is handled, not unhandled.
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The operation and its key for an error message; built only when something failed. */
function describe(operation: string, key: string | undefined): string {
  return key === undefined ? operation : `${operation} ${JSON.stringify(key)}`;
}

/**
 * What remote backends share: the options above, prefixing, TTL resolution, serialization and
 * turning every failure into a `CacheBackendError` that names the operation and key. Subclasses
 * only translate operations into their server's commands.
 */
export abstract class RemoteBackend implements CacheBackend {
  readonly synchronous = false;
  /** See {@link RemoteBackendOptions.prefix}. */
  readonly prefix: string;
  /** See {@link RemoteBackendOptions.timeout}; seconds. */
  readonly timeout: number;
  /** See {@link RemoteBackendOptions.defaultTtl}; seconds. */
  readonly defaultTtl: number | undefined;
  protected readonly serializer: Serializer;
  /** Compression, signatures and encryption around the serializer's bytes. */
  protected readonly codec: ValueCodec;
  /**
   * Set by a subclass whose own client already fails every request within `timeout` (RedisBackend
   * making its client with ioredis' `commandTimeout` ≤ `timeout` among its options; never for a
   * ready-made client), so that `attempt` does not bound requests a second time.
   */
  protected clientBoundsRequests = false;
  private readonly deadlines: Deadlines;
  /** Why the server refuses the connection (see {@link refused}); undefined while it does not. */
  private refusal: Error | undefined;
  private readonly faults = new Faults();
  private context: BackendContext | undefined;

  /** `label` names the backend class in error messages. */
  protected constructor(
    protected readonly label: string,
    options: RemoteBackendOptions,
  ) {
    const { prefix = '', serializer = defaultSerializer, timeout = DEFAULT_TIMEOUT, defaultTtl } = options;
    if (typeof prefix !== 'string') throw new CacheArgumentError(`${label}: prefix must be a string, got ${typeof prefix}`);
    if (typeof serializer?.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
      throw new CacheArgumentError(`${label}: serializer must have serialize(value) and deserialize(data) methods`);
    }
    assertPositiveSeconds(timeout, `${label}: timeout`);
    if (defaultTtl !== undefined) assertSeconds(defaultTtl, `${label}: defaultTtl`);
    this.prefix = prefix;
    this.serializer = serializer;
    this.codec = new ValueCodec(label, options);
    this.timeout = timeout;
    this.defaultTtl = defaultTtl;
    this.deadlines = new Deadlines(timeout * 1000, (operation, key) => {
      return new CacheBackendError(`${label}: ${describe(operation, key)} got no answer within ${timeout} s`, operation, key);
    });
  }

  /** {@inheritDoc CacheBackend.lookup} */
  abstract lookup(key: string): Promise<unknown>;
  /** {@inheritDoc CacheBackend.set} */
  abstract set(key: string, value: unknown, ttl?: number): Promise<void>;
  /** {@inheritDoc CacheBackend.add} */
  abstract add(key: string, value: unknown, ttl?: number): Promise<boolean>;
  /** {@inheritDoc CacheBackend.delete} */
  abstract delete(key: string): Promise<boolean>;
  /** {@inheritDoc CacheBackend.has} */
  abstract has(key: string): Promise<boolean>;
  /** {@inheritDoc CacheBackend.getMany} */
  abstract getMany(keys: readonly string[]): Promise<unknown[]>;
  /** {@inheritDoc CacheBackend.setMany} */
  abstract setMany(entries: CacheEntries, ttl?: number): Promise<void>;
  /** {@inheritDoc CacheBackend.deleteMany} */
  abstract deleteMany(keys: readonly string[]): Promise<number>;
  /** {@inheritDoc CacheBackend.clear} */
  abstract clear(): Promise<void>;
  /** {@inheritDoc CacheBackend.increment} */
  abstract increment(key: string, delta?: number): Promise<number>;
  /** {@inheritDoc CacheBackend.close} */
  abstract close(): Promise<void>;

  /** {@inheritDoc CacheBackend.attach} */
  attach(context: BackendContext): void {
    this.context = context;
  }

  /** {@inheritDoc CacheBackend.get} */
  async get(key: string): Promise<unknown> {
    return valueOf(await this.lookup(key));
  }

  /** {@inheritDoc CacheBackend.decrement} */
  decrement(key: string, delta = 1): Promise<number> {
    return this.increment(key, -delta);
  }

  /** {@inheritDoc CacheBackend.onFault} */
  onFault(listener: FaultListener): () => void {
    return this.faults.listen(listener);
  }

  /**
   * The server refuses the connection for `reason` (a certificate, a password, a permission),
   * or, with `undefined`, accepts it again. A new reason is reported as a fault at once, the
   * operations waiting for the connection fail with it now rather than at their deadline, and
   * until the connection is accepted every operation fails at once without being sent.
   */
  protected refused(reason: Error | undefined): void {
    const known = this.refusal;
    this.refusal = reason;
    if (reason === undefined || known?.message === reason.message) return;
    this.faults.report(
      new CacheBackendError(`${this.label}: the server refuses the connection: ${messageOf(reason)}`, 'connect', undefined, {
        cause: reason,
      }),
      'connect',
    );
    this.deadlines.failAll((operation, key) => this.refusedError(operation, key, reason));
  }

  /** Reports a fault that belongs to no call (see {@link CacheBackend.onFault}). */
  protected reportFault(error: unknown, operation: string): void {
    this.faults.report(
      new CacheBackendError(`${this.label}: ${operation} failed: ${messageOf(error)}`, operation, undefined, { cause: error }),
      operation,
    );
  }

  private refusedError(operation: string, key: string | undefined, reason: Error): CacheBackendError {
    return new CacheBackendError(
      `${this.label}: ${describe(operation, key)} not sent: the server refuses the connection: ${messageOf(reason)}`,
      operation,
      key,
      {
        cause: reason,
      },
    );
  }

  /** The key on the server. */
  protected rawKey(key: string): string {
    return this.prefix + key;
  }

  /** The ttl to store with, in seconds: the caller's (validated), else the backend's, else the module's. */
  protected ttlOf(ttl: number | undefined): number {
    if (ttl !== undefined && !isSeconds(ttl)) throw secondsError(ttl, `${this.label}: ttl`);
    return effectiveTtl(ttl, this.defaultTtl, this.context);
  }

  /** Throws a TypeError unless `delta` can be added to a counter. */
  protected assertDelta(delta: number): void {
    if (typeof delta !== 'number' || !Number.isFinite(delta)) {
      throw new CacheArgumentError(`${this.label}: increment/decrement delta must be a finite number, got ${String(delta)}`);
    }
  }

  /** Runs as each operation starts its work: for a subclass that gathers a tick's commands into one write. */
  protected sending(): void {}

  /** The bytes to store for `value` under `key`, genuine for `ttl` seconds (0 = always). */
  protected encode(key: string, value: unknown, ttl: number): Buffer | string {
    let data: Buffer | string;
    try {
      data = this.serializer.serialize(value);
    } catch (error) {
      if (error instanceof CacheSerializationError) throw error;
      throw new CacheSerializationError(`${this.label}: cannot serialize the value: ${messageOf(error)}`, { cause: error });
    }
    return this.codec.seal(this.rawKey(key), data, ttl);
  }

  /** Seconds a signed entry that `decode` accepted has left (0 = never expires): what a rewrite of it keeps. */
  protected signedTtlOf(data: Buffer): number {
    const expiresAt = this.codec.expiresAt(data);
    return expiresAt === 0 ? 0 : Math.max(expiresAt - Date.now(), 1) / 1000;
  }

  /** The value stored as `data` under `key`; MISS for a signed entry past its expiry. */
  protected decode(key: string, data: Buffer): unknown {
    const payload = this.codec.open(key, this.rawKey(key), data);
    if (payload === undefined) return MISS;
    try {
      return this.serializer.deserialize(payload);
    } catch (error) {
      if (error instanceof CacheSerializationError) throw error;
      throw new CacheSerializationError(`${this.label}: cannot deserialize a stored entry: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * One entry of an operation over several keys: an entry that cannot be decoded (tampered,
   * corrupt) is a miss, reported as a fault with `operation`, so that it does not fail the others.
   */
  protected readableOrMiss(operation: string, read: () => unknown): unknown {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof CacheSerializationError)) throw error;
      this.faults.report(error, operation);
      return MISS;
    }
  }

  /**
   * Runs one operation against the server, bounded by `timeout`, and `map`s its result. Hoard's
   * own errors pass through; anything else (a connection error, a server error reply, the
   * deadline) becomes a `CacheBackendError` with the operation, the hoard key (when there is
   * one) and the cause. One promise and one reaction per operation: each further `.then` on a
   * hit's way back is a microtask of its own.
   */
  protected attempt<T, R = T>(
    operation: string,
    key: string | undefined,
    work: () => Promise<T>,
    map?: (value: T) => R,
  ): Promise<R> {
    if (!operationChannel.start.hasSubscribers) return this.perform(operation, key, work, map);
    const message = { instance: this, operation, key, server: this.addressOf(key) };
    return traced(operationChannel, message, () => this.perform(operation, key, work, map));
  }

  /**
   * The server an operation on `key` goes to (`undefined` key: an operation over several keys),
   * for tracing; read only while a tracer listens on `tracing:hoard:operation:*`.
   */
  protected addressOf(_key: string | undefined): ServerAddress | undefined {
    return undefined;
  }

  private perform<T, R>(operation: string, key: string | undefined, work: () => Promise<T>, map?: (value: T) => R): Promise<R> {
    const refusal = this.refusal;
    if (refusal !== undefined) return Promise.reject(this.refusedError(operation, key, refusal));
    return new Promise<R>((resolve, reject) => {
      const watch = this.clientBoundsRequests ? undefined : this.deadlines.track(reject, operation, key);
      const settled = (): void => {
        if (watch !== undefined) this.deadlines.release(watch);
      };
      const failed = (error: unknown): void => {
        settled();
        reject(this.failure(operation, key, error));
      };
      const succeeded = (value: T): void => {
        settled();
        try {
          resolve(map === undefined ? (value as unknown as R) : map(value));
        } catch (error) {
          // An entry that cannot be decoded stays a CacheSerializationError (a CacheError).
          reject(this.failure(operation, key, error));
        }
      };
      try {
        this.sending();
        work().then(succeeded, failed);
      } catch (error) {
        failed(error);
      }
    });
  }

  private failure(operation: string, key: string | undefined, error: unknown): Error {
    if (error instanceof CacheError) return error;
    return new CacheBackendError(`${this.label}: ${describe(operation, key)} failed: ${messageOf(error)}`, operation, key, {
      cause: error,
    });
  }
}
