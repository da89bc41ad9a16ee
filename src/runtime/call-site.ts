import { CacheConfigError, notRegisteredError } from '../errors.js';
import { encodeArguments } from '../keys/encode.js';
import { derivedBase, entryBase, isReserved } from '../module/keyspace.js';
import { KnownKeys } from '../keys/known-keys.js';
import { isThenable } from '../maybe-promise.js';
import type { Topic } from '../module/events.js';
import { state, DEFAULT_BACKEND, type Registration } from '../module/state.js';
import type { Counter } from '../module/stats.js';
import type { ObservableClass } from './observable.js';
import type { CachedOptions, TargetOptions } from './options.js';
import { stamped } from './records.js';

export type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

/** How a decorated method or a `cached(fn)` is known before it is first called. */
export interface Callee {
  readonly fn: AnyFunction;
  /** `Class.method`, or undefined until the first call finds the declaring class (TC39 decorators). */
  label: string | undefined;
  /** Declared `async` (or `Promise` by `design:returntype`): errors become rejections, remote backends allowed. */
  readonly async: boolean;
  /**
   * The Observable class the method returns (`design:returntype`, or learnt from its first
   * result): calls then return Observables of the cached value, remote backends allowed.
   */
  observable?: ObservableClass | undefined;
}

function reservedError(label: string, key: string): CacheConfigError {
  return new CacheConfigError(
    `${label}: the key ${JSON.stringify(key)} starts with keyPrefix + 'hoard:', where hoard keeps its own records and locks. ` +
      'Choose another custom key or namespace.',
  );
}

export function isAsyncFunction(fn: Function): boolean {
  return (fn as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] === 'AsyncFunction';
}

/**
 * What every cached call site shares: resolving the backend and the key at call time (so
 * classes may load before `CacheModule.register` runs), storing, and reporting faults. The
 * resolution is cached and re-checked against `state.version` with one comparison per call.
 */
export abstract class CallSite {
  private version = -1;
  protected registration!: Registration;
  protected counter!: Counter;
  /** What derived keys start with (see module/keyspace.ts). */
  private keyBase = '';
  /** What custom keys start with: keyPrefix + `v<version>:` + namespace + `:`. */
  private customBase = '';
  /** Derived keys of recent argument lists, so a hit need not encode them again. */
  private readonly knownKeys = new KnownKeys();

  constructor(
    readonly callee: Callee,
    protected readonly options: TargetOptions & Pick<CachedOptions, 'ttl' | 'unless'>,
    /** Finds the label from the receiver when the decorator could not tell the class. */
    private readonly labelFrom?: (self: unknown) => string,
  ) {}

  get label(): string {
    return this.callee.label ?? '<unresolved>';
  }

  /** The registration to use, refreshed when anything was (re)registered or (re)configured. */
  protected resolve(self: unknown): Registration {
    if (this.version !== state.version) this.refresh(self);
    return this.registration;
  }

  private refresh(self: unknown): void {
    const callee = this.callee;
    callee.label ??= this.labelFrom?.(self);
    const label = this.label;
    const name = this.options.backend ?? DEFAULT_BACKEND;
    const registration = state.backends.get(name);
    if (!registration) throw notRegisteredError(`${label}: `, name);
    if (!registration.backend.synchronous && !callee.async && callee.observable === undefined) {
      throw new CacheConfigError(
        `${label} is synchronous, but backend '${name}' answers asynchronously. ` +
          'Declare the method `async` (or cache it on a MemoryBackend). A method returning an Observable: ' +
          'declare its return type `Observable<…>`, with Observable imported as a value (not `import type`): ' +
          'emitDecoratorMetadata records it.',
      );
    }
    const namespace = this.options.namespace;
    this.customBase = entryBase(namespace);
    this.keyBase = derivedBase(namespace, label);
    if (this.options.key === undefined && isReserved(this.keyBase)) throw reservedError(label, this.keyBase);
    this.knownKeys.forget();
    this.registration = registration;
    this.counter = state.methodCounters.for(label);
    this.version = state.version;
    this.refreshed(registration);
  }

  /** After the backend or configuration changed: for subclasses that keep state per backend. */
  protected refreshed(_registration: Registration): void {}

  /** The key derived for `args` when they were learnt since the key prefix last changed. */
  protected knownKey(args: ArrayLike<unknown>): string | undefined {
    return this.options.key === undefined ? this.knownKeys.find(args) : undefined;
  }

  /** Remembers the key derived for `args`, for {@link knownKey}; custom keys are not derived. */
  protected learnKey(args: ArrayLike<unknown>, key: string): void {
    if (this.options.key === undefined) this.knownKeys.learn(args, key);
  }

  /** The hoard key for a call: the custom `key` if given, else derived from the arguments. */
  protected keyFor(self: unknown, args: ArrayLike<unknown>): string {
    const key = this.options.key;
    if (key === undefined) return encodeArguments(args, this.label, this.keyBase);
    const custom = typeof key === 'string' ? key : key.apply(self, args as unknown[]);
    if (typeof custom !== 'string') {
      throw new CacheConfigError(`${this.label}: the \`key\` function returned ${typeof custom}, not a string`);
    }
    const full = this.customBase + custom;
    if (isReserved(full)) throw reservedError(this.label, full);
    return full;
  }

  /** Setup errors reach the caller the way its own errors would: a rejection for async methods. */
  protected fail(error: unknown): never | Promise<never> {
    if (this.callee.async) return Promise.reject(error);
    throw error;
  }

  protected emit(topic: Topic, key: string, backend = this.registration.name): void {
    if (topic.wanted) topic.emit({ backend, key, method: this.label });
  }

  /** A backend fault: counted and reported, never thrown at the caller (fail-open). */
  protected report(registration: Registration, key: string, operation: string, error: unknown): void {
    registration.counter.errors++;
    this.counter.errors++;
    const topic = state.events.error;
    if (topic.wanted) topic.emit({ backend: registration.name, key, method: this.label, operation, error });
  }

  /**
   * Stores a computed result, unless `unless` says not to; faults are reported, not thrown.
   * `computeMs` is how long the method took (kept beside the value for early refresh); `tokens`
   * are those of the records the value was computed under (see runtime/records.ts).
   */
  protected store(
    self: unknown,
    args: unknown[],
    key: string,
    value: unknown,
    computeMs = 0,
    tokens?: readonly string[],
  ): void | Promise<void> {
    const unless = this.options.unless;
    if (unless !== undefined && unless.call(self, value, ...args)) return;
    const registration = this.registration;
    const ttl = this.ttlOfWrite();
    return this.failOpen(
      registration,
      key,
      'set',
      () => {
        const entry = this.entryOf(value, ttl, computeMs);
        return registration.backend.set(key, tokens === undefined ? entry : stamped(entry, tokens), this.physicalTtl(ttl));
      },
      () => this.emit(state.events.set, key, registration.name),
    );
  }

  /** The ttl of one write; undefined lets the backend apply its default. */
  protected ttlOfWrite(): number | undefined {
    return this.options.ttl;
  }

  /** How long the backend keeps an entry written with `ttl`. */
  protected physicalTtl(ttl: number | undefined): number | undefined {
    return ttl;
  }

  /** What is written for a result: the value itself, unless a subclass keeps metadata beside it. */
  protected entryOf(value: unknown, _ttl: number | undefined, _computeMs: number): unknown {
    return value;
  }

  /** Deletes one key, or clears the backend; faults are reported, not thrown. */
  protected evict(key: string | undefined): void | Promise<void> {
    const registration = this.registration;
    const backend = registration.backend;
    const label = key ?? '*';
    return this.failOpen(
      registration,
      label,
      key === undefined ? 'clear' : 'delete',
      () => (key === undefined ? backend.clear() : backend.delete(key)),
      () => this.emit(state.events.evict, label, registration.name),
    );
  }

  /**
   * Fail-open: the one way the call path runs a backend operation whose fault must not reach
   * the caller (a store, a delete). A fault, thrown or rejected, is counted and reported as an
   * `error` event; `done` runs once the operation succeeded.
   */
  protected failOpen(
    registration: Registration,
    key: string,
    operation: string,
    work: () => unknown,
    done: () => void,
  ): void | Promise<void> {
    try {
      const result = work();
      if (isThenable(result)) {
        return Promise.resolve(result).then(done, (error: unknown) => this.report(registration, key, operation, error));
      }
      done();
    } catch (error) {
      this.report(registration, key, operation, error);
    }
  }

  abstract invoke(self: unknown, args: unknown[]): unknown;
}
