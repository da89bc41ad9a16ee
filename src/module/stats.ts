/** Lookup counts for one backend or one method. */
export interface Counts {
  /** Lookups that found the entry. */
  hits: number;
  /** Lookups that did not (the method ran). Calls joining a computation under way count as neither. */
  misses: number;
  /** Faults reported as `error` events (the caller got a computed value anyway). */
  errors: number;
  /** hits / (hits + misses), a fraction in [0, 1]; 0 before any lookup. */
  hitRatio: number;
}

/** What `CacheModule.stats()` returns: counts since start (or the last `reset()`). */
export interface CacheStats {
  /** By registered backend name (`'default'` for the default one). */
  backends: Record<string, Counts>;
  /** By `Class.method`, or the `name` given to `cached(fn)`. */
  methods: Record<string, Counts>;
}

/** Mutable counters; the call path increments them in place, `stats()` snapshots them. */
export class Counter {
  hits = 0;
  misses = 0;
  errors = 0;

  snapshot(): Counts {
    const lookups = this.hits + this.misses;
    return { hits: this.hits, misses: this.misses, errors: this.errors, hitRatio: lookups ? this.hits / lookups : 0 };
  }
}

/** Counters by name, created on first use. */
export class CounterMap {
  private readonly counters = new Map<string, Counter>();

  for(name: string): Counter {
    let counter = this.counters.get(name);
    if (!counter) this.counters.set(name, (counter = new Counter()));
    return counter;
  }

  snapshot(): Record<string, Counts> {
    const out: Record<string, Counts> = {};
    for (const [name, counter] of this.counters) out[name] = counter.snapshot();
    return out;
  }
}
