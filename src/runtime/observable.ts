import { CacheConfigError } from '../errors.js';
import { isThenable } from '../maybe-promise.js';

/* RxJS Observables, recognised by shape and built with the class the method itself used, so
 * hoard never imports rxjs (an optional peer) and the caller gets the same rxjs copy back. */

interface Observer {
  next(value: unknown): void;
  error(error: unknown): void;
  complete(): void;
}

interface Subscription {
  unsubscribe(): void;
}

export interface ObservableLike {
  subscribe(observer: Partial<Observer>): Subscription;
  pipe(...operators: unknown[]): unknown;
}

/** RxJS's `Observable` class, or one shaped like it: `new (subscribe => teardown)`. */
export type ObservableClass = new (subscribe: (subscriber: Observer) => void) => ObservableLike;

const hasOwnSubscribe = (prototype: object) => Object.prototype.hasOwnProperty.call(prototype, 'subscribe');

/** Whether `value` is an Observable: RxJS's test by shape (`subscribe` and `pipe`), without rxjs. */
export function isObservable(value: unknown): value is ObservableLike {
  const candidate = value as Partial<ObservableLike> | null;
  return typeof candidate?.subscribe === 'function' && typeof candidate.pipe === 'function';
}

/**
 * The base Observable class on `prototype`'s chain: the farthest class that defines `subscribe`
 * (a Subject's own constructor would not take a subscribe function).
 */
export function observableClassOf(prototype: object | null): ObservableClass | undefined {
  let found: ObservableClass | undefined;
  for (let p = prototype; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    if (hasOwnSubscribe(p)) found = (p as { constructor: ObservableClass }).constructor;
  }
  return found;
}

/** The class to build Observables with when `type` (a `design:returntype`) is an Observable class. */
export function observableClassFromType(type: unknown): ObservableClass | undefined {
  return typeof type === 'function' && isObservable(type.prototype) ? observableClassOf(type.prototype) : undefined;
}

/**
 * The one value `observable` emits, as a promise. More than one value, or none, is refused: a
 * cached call answers with one value, so caching would silently drop the others.
 */
export function singleValue(observable: ObservableLike, label: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let values = 0;
    let value: unknown;
    let settled = false;
    let subscription: Subscription | undefined;
    const refuse = (what: string) =>
      new CacheConfigError(
        `${label} returned an Observable that ${what}; hoard caches Observables of exactly one value ` +
          '(an HTTP call). Cache a method that returns one value (e.g. pipe(toArray()) or first()), or leave it uncached.',
      );
    // eslint-disable-next-line prefer-const -- declared above for the callbacks, which may run before subscribe returns.
    subscription = observable.subscribe({
      next(next) {
        if (settled) return;
        if (++values === 1) {
          value = next;
          return;
        }
        settled = true;
        reject(refuse('emitted more than one value'));
        subscription?.unsubscribe();
      },
      error(error) {
        settled = true;
        reject(error);
      },
      complete() {
        if (settled) return;
        settled = true;
        if (values === 1) resolve(value);
        else reject(refuse('completed without a value'));
      },
    });
    if (settled) subscription.unsubscribe();
  });
}

/**
 * An Observable of `Class` that, on each subscription, runs `produce` and emits its value (at
 * once when it is not a promise) then completes, or errors.
 */
export function toObservable(Class: ObservableClass, produce: () => unknown): ObservableLike {
  return new Class((subscriber) => {
    let result: unknown;
    try {
      result = produce();
    } catch (error) {
      subscriber.error(error);
      return;
    }
    const emit = (value: unknown) => {
      subscriber.next(value);
      subscriber.complete();
    };
    if (isThenable(result)) result.then(emit, (error) => subscriber.error(error));
    else emit(result);
  });
}
