/** One L2 round trip whose answer may be copied into L1, as handed out by {@link FillGuard.watch}. */
export interface Watch {
  readonly key: string;
  readonly entry: { readers: number; version: number };
  readonly version: number;
  readonly clears: number;
}

/**
 * Keeps an L2 answer that is already out of date from being copied into L1.
 *
 * A read (or write) of L2 takes a round trip; an invalidation of the same key (a message from
 * another process, or a local write) may land meanwhile. Copying the answer into L1 afterwards
 * would bring back the value just invalidated, for as long as the L1 TTL. So every round trip
 * whose answer goes to L1 is watched, and the copy is made only if nothing invalidated its key
 * (or cleared everything) while it was under way.
 *
 * Only keys with a round trip in flight are tracked, so the bookkeeping stays as small as the
 * traffic; each step is O(1).
 */
export class FillGuard {
  private readonly watched = new Map<string, { readers: number; version: number }>();
  private clears = 0;

  /** Call before sending the round trip for `key`. */
  watch(key: string): Watch {
    let entry = this.watched.get(key);
    if (entry === undefined) this.watched.set(key, (entry = { readers: 0, version: 0 }));
    entry.readers++;
    return { key, entry, version: entry.version, clears: this.clears };
  }

  /** Call once the round trip is over (answered or failed); true when its answer may still go to L1. */
  release(watch: Watch): boolean {
    const { entry } = watch;
    if (--entry.readers === 0) this.watched.delete(watch.key);
    return this.current(watch);
  }

  /** True while nothing has invalidated the watched key (or cleared everything) since `watch` began. */
  current(watch: Watch): boolean {
    return watch.entry.version === watch.version && this.clears === watch.clears;
  }

  invalidate(key: string): void {
    const entry = this.watched.get(key);
    if (entry !== undefined) entry.version++;
  }

  invalidateAll(): void {
    this.clears++;
  }
}
