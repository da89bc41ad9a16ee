import { CacheBackendError, CacheError, CacheSerializationError } from '../errors.js';
import { assertSeconds, effectiveTtl } from '../module/config.js';
import { defaultSerializer } from '../serialization/default-serializer.js';
import type { Serializer } from '../serialization/serializer.js';
import { MISS, type CacheBackend, type CacheEntries } from './backend.js';

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
  /** Seconds an entry lives when `set` is given no ttl; `0` = never expires. Default: the module's `defaultTtl`. */
  defaultTtl?: number;
}

const DEFAULT_TIMEOUT = 0.5;

/**
 * Settles like `work`, or rejects with `timedOut()` after `ms` milliseconds, whichever comes
 * first. For clients that cannot bound a request themselves, and as the backend's own bound
 * when a user-made client was configured without one.
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
  /**
   * Set by a subclass whose client already fails every request after `timeout` (ioredis'
   * `commandTimeout` on a client hoard made, the Memcached connection's own deadline), so that
   * `attempt` does not arm a second timer.
   */
  protected clientBoundsRequests = false;

  /** `label` names the backend class in error messages. */
  protected constructor(
    protected readonly label: string,
    options: RemoteBackendOptions,
  ) {
    const { prefix = '', serializer = defaultSerializer, timeout = DEFAULT_TIMEOUT, defaultTtl } = options;
    if (typeof prefix !== 'string') throw new TypeError(`${label}: prefix must be a string, got ${typeof prefix}`);
    if (typeof serializer?.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
      throw new TypeError(`${label}: serializer must have serialize(value) and deserialize(data) methods`);
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new TypeError(`${label}: timeout must be a finite number of seconds > 0, got ${String(timeout)}`);
    }
    if (defaultTtl !== undefined) assertSeconds(defaultTtl, `${label}: defaultTtl`);
    this.prefix = prefix;
    this.serializer = serializer;
    this.timeout = timeout;
    this.defaultTtl = defaultTtl;
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

  /** {@inheritDoc CacheBackend.get} */
  async get(key: string): Promise<unknown> {
    const value = await this.lookup(key);
    return value === MISS ? undefined : value;
  }

  /** {@inheritDoc CacheBackend.decrement} */
  decrement(key: string, delta = 1): Promise<number> {
    return this.increment(key, -delta);
  }

  /** The key on the server. */
  protected rawKey(key: string): string {
    return this.prefix + key;
  }

  /** The ttl to store with, in seconds: the caller's (validated), else the backend's, else the module's. */
  protected ttlOf(ttl: number | undefined): number {
    if (ttl !== undefined) assertSeconds(ttl, `${this.label}: ttl`);
    return effectiveTtl(ttl, this.defaultTtl);
  }

  /** Throws a TypeError unless `delta` can be added to a counter. */
  protected assertDelta(delta: number): void {
    if (typeof delta !== 'number' || !Number.isFinite(delta)) {
      throw new TypeError(`${this.label}: increment/decrement delta must be a finite number, got ${String(delta)}`);
    }
  }

  protected encode(value: unknown): Buffer | string {
    try {
      return this.serializer.serialize(value);
    } catch (error) {
      if (error instanceof CacheSerializationError) throw error;
      throw new CacheSerializationError(`${this.label}: cannot serialize the value: ${messageOf(error)}`, { cause: error });
    }
  }

  protected decode(data: Buffer): unknown {
    try {
      return this.serializer.deserialize(data);
    } catch (error) {
      if (error instanceof CacheSerializationError) throw error;
      throw new CacheSerializationError(`${this.label}: cannot deserialize a stored entry: ${messageOf(error)}`, { cause: error });
    }
  }

  /**
   * Runs one operation against the server, bounded by `timeout`. Hoard's own errors pass through;
   * anything else (a connection error, a server error reply, the deadline) becomes a
   * `CacheBackendError` with the operation, the hoard key (when there is one) and the cause.
   */
  protected attempt<T>(operation: string, key: string | undefined, work: () => Promise<T>): Promise<T> {
    const failed = (error: unknown): never => {
      if (error instanceof CacheError) throw error;
      throw new CacheBackendError(`${this.label}: ${describe(operation, key)} failed: ${messageOf(error)}`, operation, key, { cause: error });
    };
    let pending: Promise<T>;
    try {
      pending = work();
    } catch (error) {
      return Promise.reject(error).catch(failed);
    }
    // A client that bounds every request by `timeout` itself needs no second timer per operation
    // (measured in bench/: the extra timer and race cost a third of a Redis hit at 256 in flight).
    if (!this.clientBoundsRequests) {
      pending = withDeadline(pending, this.timeout * 1000, () => {
        return new CacheBackendError(`${this.label}: ${describe(operation, key)} got no answer within ${this.timeout} s`, operation, key);
      });
    }
    return pending.catch(failed);
  }


}
