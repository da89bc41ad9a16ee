/**
 * Values that may come synchronously or as a promise: a memory backend answers at once, a remote
 * one later, and the call path serves both without awaiting what is already there.
 */

/** A value, or a promise of it: synchronous backends answer directly. */
export type MaybePromise<T> = T | Promise<T>;

/** True for a promise or any other thenable (what `await` would wait for). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** `next` applied to `value`, at once when it is there, once it settles when it is a promise. */
export function then<T, R>(value: MaybePromise<T>, next: (resolved: T) => MaybePromise<R>): MaybePromise<R> {
  return isThenable(value) ? Promise.resolve(value).then(next) : next(value);
}

/**
 * For a rejection (or an `error` event) that is handled another way, or that cannot matter:
 * `promise.catch(ignore)`.
 */
export const ignore = (): void => undefined;
