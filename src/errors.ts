/** Base class of every error hoard throws, so callers can tell them from their own. */
export class CacheError extends Error {
  /** The class name, also on the subclasses, so logs and `error.name` checks can tell them apart. */
  override name = 'CacheError';
}

/**
 * A setup mistake: a backend that is not registered, a synchronous method over a remote
 * backend, an option that cannot work. Thrown (or rejected, for async methods) on call.
 */
export class CacheConfigError extends CacheError {
  override name = 'CacheConfigError';
}

/** An argument that has no stable encoding, so no safe cache key can be built from it. */
export class CacheKeyError extends CacheError {
  override name = 'CacheKeyError';

  constructor(
    /** `Class.method` (or the `name` given to `cached(fn)`). */
    readonly method: string,
    /** 0-based position of the offending argument. */
    readonly argumentIndex: number,
    reason: string,
  ) {
    super(
      `${method}: argument ${argumentIndex} ${reason}; it has no stable cache key. ` +
        'Pass plain data, or give @Cached a `key` function that picks what identifies the call.',
    );
  }
}

/** A backend operation that failed or did not answer within the backend's `timeout`. */
export class CacheBackendError extends CacheError {
  override name = 'CacheBackendError';

  constructor(
    message: string,
    /** The backend operation that failed: `get`, `set`, `delete`, `clear`, `increment`, … */
    readonly operation: string,
    /** The hoard key it was about (before the backend's prefix), when the operation had one. */
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A value larger than the server accepts (Memcached's item size limit); it is not stored. */
export class CacheValueTooLargeError extends CacheBackendError {
  override name = 'CacheValueTooLargeError';
}

/** A value the serializer cannot encode (a function, a symbol, a circular structure...). */
export class CacheSerializationError extends CacheError {
  override name = 'CacheSerializationError';
}
