/**
 * Every error hoard throws, and the one rule for which kind is which.
 *
 * - **A `TypeError`** (a {@link CacheArgumentError}, code `HOARD_ARGUMENT`) is thrown by the call
 *   you made, at once, about a value you passed to it: a constructor's options, `configure`,
 *   applying a decorator, `cached()`, a backend method's `ttl` or `delta`. Fix the call site.
 * - **A {@link CacheError}** is found while the cache works: a setup that cannot serve this call
 *   (`CacheConfigError`: the backend is not registered, a synchronous method over an asynchronous
 *   backend, a `key` function that returned no string), an argument with no stable key
 *   (`CacheKeyError`), a backend operation that failed (`CacheBackendError`), a value that cannot be
 *   stored or read back (`CacheSerializationError`, `CacheValueTooLargeError`, `CacheIntegrityError`).
 *
 * Every one of them carries a stable `code` from {@link CacheErrorCode}: branch on codes, not on
 * messages, which may be reworded. Errors of other libraries (ioredis, a socket) reach you only as
 * the `cause` of a `CacheBackendError`.
 */
export const CacheErrorCode = Object.freeze({
  /** {@link CacheArgumentError}: a `TypeError` about a value passed to the call. */
  ARGUMENT: 'HOARD_ARGUMENT',
  /** {@link CacheConfigError}. */
  CONFIG: 'HOARD_CONFIG',
  /** {@link CacheKeyError}. */
  KEY: 'HOARD_KEY',
  /** {@link CacheBackendError}. */
  BACKEND: 'HOARD_BACKEND',
  /** {@link CacheValueTooLargeError}. */
  VALUE_TOO_LARGE: 'HOARD_VALUE_TOO_LARGE',
  /** {@link CacheSerializationError}. */
  SERIALIZATION: 'HOARD_SERIALIZATION',
  /** {@link CacheIntegrityError}. */
  INTEGRITY: 'HOARD_INTEGRITY',
} as const);

/** One of the {@link CacheErrorCode} values: `'HOARD_CONFIG'`, `'HOARD_KEY'`, … */
export type CacheErrorCode = (typeof CacheErrorCode)[keyof typeof CacheErrorCode];

/** Marks hoard's error classes, whichever copy of hoard defined them. */
const HOARD_ERROR = Symbol.for('hoard.error');

/**
 * `instanceof` for hoard's error classes: a class in the value's prototype chain that is
 * `errorClass`, or a hoard error class of the same name (defined by the other build).
 */
function isHoardError(errorClass: Function, value: unknown): boolean {
  for (let proto = value == null ? null : Object.getPrototypeOf(value); proto != null; proto = Object.getPrototypeOf(proto)) {
    const constructor = (proto as { constructor?: Function & { [HOARD_ERROR]?: true } }).constructor;
    if (constructor === errorClass || (constructor?.[HOARD_ERROR] === true && constructor.name === errorClass.name)) return true;
  }
  return false;
}

/**
 * A value passed to a hoard call that it cannot accept. A `TypeError` (its `name` too), as the
 * built-in APIs throw, with a `code` so that it can be told from a `TypeError` of your own.
 */
export class CacheArgumentError extends TypeError {
  /** @internal */
  static readonly [HOARD_ERROR] = true;

  /** Also true for a `CacheArgumentError` of the other build of hoard (see {@link CacheError}). */
  static override [Symbol.hasInstance](this: Function, value: unknown): boolean {
    return isHoardError(this, value);
  }

  /** Always `HOARD_ARGUMENT`: see {@link CacheErrorCode}. */
  readonly code: CacheErrorCode = CacheErrorCode.ARGUMENT;
}

/** Base class of the errors hoard finds while the cache works (see the rule above), so callers can tell them from their own. */
export abstract class CacheError extends Error {
  /** @internal */
  static readonly [HOARD_ERROR] = true;

  /**
   * `instanceof` also holds for an error of the same class made by the other build of hoard in
   * this process: its ES module and CommonJS builds each define these classes.
   */
  static override [Symbol.hasInstance](this: Function, value: unknown): boolean {
    return isHoardError(this, value);
  }

  /** The class name, also on the subclasses, so logs and `error.name` checks can tell them apart. */
  override name = 'CacheError';
  /** Stable across releases: see {@link CacheErrorCode}. */
  abstract readonly code: CacheErrorCode;
}

/**
 * A setup that cannot serve this call: a backend that is not registered, a synchronous method
 * over a remote backend, a `key` function that returned no string, `invalidate` of a method that
 * is not cached. Thrown (or rejected, for async methods) on call, not when the class is defined.
 */
export class CacheConfigError extends CacheError {
  override name = 'CacheConfigError';
  readonly code: CacheErrorCode = CacheErrorCode.CONFIG;
}

/** An argument that has no stable encoding, so no safe cache key can be built from it. */
export class CacheKeyError extends CacheError {
  override name = 'CacheKeyError';
  readonly code: CacheErrorCode = CacheErrorCode.KEY;

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
  readonly code: CacheErrorCode = CacheErrorCode.BACKEND;

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
  override readonly code: CacheErrorCode = CacheErrorCode.VALUE_TOO_LARGE;
}

/** A value the serializer cannot encode (a function, a symbol, a circular structure...), or a stored entry it cannot decode. */
export class CacheSerializationError extends CacheError {
  override name = 'CacheSerializationError';
  readonly code: CacheErrorCode = CacheErrorCode.SERIALIZATION;
}

/** The message of anything thrown, for an error that wraps it. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why a stored entry was refused by a backend with `integrity` or `encryption`
 * (see {@link CacheIntegrityError.reason}).
 */
export type CacheIntegrityReason =
  /** The entry carries no signature or encryption: written without keys, or by someone else. */
  | 'unsigned'
  /** Signed or encrypted under a key this backend does not hold (dropped in a rotation, or foreign). */
  | 'unknown-key'
  /** Its signature or authentication tag does not match: changed bytes, or moved from another key. */
  | 'tampered'
  /** Too short or of an unknown format to be one of hoard's entries: truncated, or written by a newer version. */
  | 'malformed';

/**
 * A stored entry that fails the checks of a backend's `integrity` or `encryption` keys. It is
 * never returned: the call path treats it as a miss (the method runs and its value replaces the
 * entry) and reports this error as an `error` event. A subclass of
 * {@link CacheSerializationError}, since, like an entry that cannot be decoded, the entry is
 * unusable rather than the backend broken.
 */
export class CacheIntegrityError extends CacheSerializationError {
  override name = 'CacheIntegrityError';
  /** Stable across releases: branch on it (and on {@link reason}), not on the message. */
  override readonly code: CacheErrorCode = CacheErrorCode.INTEGRITY;

  constructor(
    message: string,
    /** What was wrong with the entry. */
    readonly reason: CacheIntegrityReason,
    /** The hoard key it was read under (before the backend's prefix). */
    readonly key: string,
  ) {
    super(message);
  }
}

/**
 * The error for a backend name nothing registered. It names hoard and both ways to register,
 * because inside a NestJS app "CacheModule" alone would read as Nest's own module.
 */
export function notRegisteredError(subject: string, name: string): CacheConfigError {
  const [register, forRoot] =
    name === 'default'
      ? ['CacheModule.register(backend)', '{ backends: backend }']
      : [`CacheModule.register('${name}', backend)`, `{ backends: { '${name}': backend } }`];
  return new CacheConfigError(
    `hoard: ${subject}no cache backend is registered as '${name}'. Register one at startup: ${register} from 'hoard', ` +
      `or in a NestJS app HoardModule.forRoot(${forRoot}) from 'hoard/nestjs'.`,
  );
}
