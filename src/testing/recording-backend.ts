import type { BackendContext, CacheBackend, CacheEntries, EntryWithTtl, MaybePromise, Miss } from '../backends/backend.js';

/** One call a {@link RecordingBackend} passed on. */
export interface RecordedCall {
  /** The `CacheBackend` method called: `lookup`, `set`, `delete`, … */
  operation: string;
  /** Its arguments, as passed. */
  args: unknown[];
}

/**
 * Wraps a backend and records every call before passing it on, for assertions such as "this
 * invalidation issued a constant number of backend commands":
 *
 * ```ts
 * const recording = new RecordingBackend(new MemoryBackend());
 * CacheModule.register(recording);
 * // …
 * expect(recording.count('delete')).to.equal(1);
 * ```
 */
export class RecordingBackend implements CacheBackend {
  /** Every call so far, oldest first. */
  readonly calls: RecordedCall[] = [];
  readonly deleteIfEquals?: (key: string, expected: string) => MaybePromise<boolean>;
  readonly lookupWithTtl?: (key: string) => Promise<EntryWithTtl | Miss>;

  constructor(
    /** The backend every call is passed on to. */
    readonly inner: CacheBackend,
  ) {
    // The optional operations are offered only when the inner backend has them, so that the call
    // path takes the same branches as over the inner backend alone.
    if (inner.deleteIfEquals) this.deleteIfEquals = (key, expected) => this.pass('deleteIfEquals', key, expected);
    if (inner.lookupWithTtl) this.lookupWithTtl = (key) => this.pass('lookupWithTtl', key);
  }

  /** Passed on, not recorded: registration is wiring, not a cache operation a test counts. */
  attach(context: BackendContext): void {
    this.inner.attach?.(context);
  }

  get synchronous(): boolean {
    return this.inner.synchronous;
  }

  /** How many calls were recorded, of one operation or of all. */
  count(operation?: string): number {
    return operation === undefined ? this.calls.length : this.calls.filter((call) => call.operation === operation).length;
  }

  /** Forgets the calls recorded so far. */
  reset(): void {
    this.calls.length = 0;
  }

  get(key: string) {
    return this.pass('get', key);
  }
  lookup(key: string) {
    return this.pass('lookup', key);
  }
  set(key: string, value: unknown, ttl?: number) {
    return this.pass('set', key, value, ttl);
  }
  add(key: string, value: unknown, ttl?: number) {
    return this.pass('add', key, value, ttl);
  }
  delete(key: string) {
    return this.pass('delete', key);
  }
  has(key: string) {
    return this.pass('has', key);
  }
  getMany(keys: readonly string[]) {
    return this.pass('getMany', keys);
  }
  setMany(entries: CacheEntries, ttl?: number) {
    return this.pass('setMany', entries, ttl);
  }
  deleteMany(keys: readonly string[]) {
    return this.pass('deleteMany', keys);
  }
  clear() {
    return this.pass('clear');
  }
  increment(key: string, delta?: number) {
    return this.pass('increment', key, delta);
  }
  decrement(key: string, delta?: number) {
    return this.pass('decrement', key, delta);
  }
  close() {
    return this.pass('close');
  }

  private pass<K extends keyof CacheBackend>(
    operation: K,
    ...args: Parameters<Extract<CacheBackend[K], (...args: any[]) => unknown>>
  ): ReturnType<Extract<CacheBackend[K], (...args: any[]) => unknown>> {
    this.calls.push({ operation, args });
    const method = this.inner[operation] as (...args: unknown[]) => unknown;
    return method.apply(this.inner, args) as ReturnType<Extract<CacheBackend[K], (...args: any[]) => unknown>>;
  }
}
