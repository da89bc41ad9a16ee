/** One operation being watched; see {@link Deadlines.track}. */
export interface Watch {
  /** `performance.now()` at which the operation has failed. */
  readonly at: number;
  readonly reject: (error: Error) => void;
  readonly operation: string;
  readonly key: string | undefined;
  older: Watch | undefined;
  newer: Watch | undefined;
}

/**
 * Bounds many operations by one timeout with one timer, not a timer each. Every operation gets
 * the same `ms`, so deadlines fall due in the order operations started: only the oldest
 * unsettled operation needs watching, and a settled one just leaves the list. (ioredis'
 * `commandTimeout` arms and clears a timer per command; docs/backends.md has the measurement.)
 */
export class Deadlines {
  /** Unsettled operations, oldest first. */
  private oldest: Watch | undefined;
  private newest: Watch | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    /** The error an operation that got no answer in time rejects with. */
    private readonly timedOut: (operation: string, key: string | undefined) => Error,
  ) {}

  /** Rejects through `reject` once `ms` have passed, unless {@link release}d first. */
  track(reject: (error: Error) => void, operation: string, key: string | undefined): Watch {
    const watch: Watch = { at: performance.now() + this.ms, reject, operation, key, older: this.newest, newer: undefined };
    if (this.newest === undefined) this.oldest = watch;
    else this.newest.newer = watch;
    this.newest = watch;
    this.timer ??= setTimeout(this.expire, this.ms).unref();
    return watch;
  }

  /** The operation settled: stop watching it (a no-op once it has expired). */
  release(watch: Watch): void {
    if (watch.older === undefined && this.oldest !== watch) return;
    if (watch.older === undefined) this.oldest = watch.newer;
    else watch.older.newer = watch.newer;
    if (watch.newer === undefined) this.newest = watch.older;
    else watch.newer.older = watch.older;
    // A released watch may still be reached from one that expires later: cut it loose.
    watch.older = watch.newer = undefined;
  }

  /** Rejects every operation being watched now with `failed(operation, key)`, without waiting for its deadline. */
  failAll(failed: (operation: string, key: string | undefined) => Error): void {
    for (let watch = this.oldest; watch !== undefined; watch = this.oldest) {
      this.release(watch);
      watch.reject(failed(watch.operation, watch.key));
    }
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (let watch = this.oldest; watch !== undefined; watch = this.oldest) {
      if (watch.at > now) {
        this.timer = setTimeout(this.expire, watch.at - now + 1).unref();
        return;
      }
      this.release(watch);
      watch.reject(this.timedOut(watch.operation, watch.key));
    }
  };
}
