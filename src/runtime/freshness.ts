import type { CachedOptions } from './options.js';

/*
 * Freshness (`staleTtl`, `earlyRefresh`): an entry carries, beside the value, the moment it
 * stops being fresh (ms since the epoch, 0 = never) and how long the method took to compute it.
 * Without either option entries stay bare values, and none of this runs on a hit.
 */

const FRESH_UNTIL = '__hoardFreshUntil';

interface Entry {
  [FRESH_UNTIL]: number;
  value: unknown;
  computeMs: number;
}

function isEntry(entry: unknown): entry is Entry {
  return typeof (entry as Entry | null)?.[FRESH_UNTIL] === 'number';
}

/** The value an entry holds, with or without freshness. */
export function valueOf(entry: unknown): unknown {
  return isEntry(entry) ? entry.value : entry;
}

/** Why serving an entry starts a refresh: it is past its freshness, or XFetch drew it early. */
export type Due = 'stale' | 'early';

export class Freshness {
  readonly staleTtl: number;
  /** XFetch's beta; 0 = no early refresh. */
  private readonly beta: number;
  /** Entries carry freshness; false keeps them bare and the hit path short. */
  readonly enveloped: boolean;

  constructor({ staleTtl = 0, earlyRefresh = false }: Pick<CachedOptions, 'staleTtl' | 'earlyRefresh'>) {
    this.staleTtl = staleTtl;
    this.beta = earlyRefresh === true ? 1 : earlyRefresh === false ? 0 : earlyRefresh;
    this.enveloped = staleTtl > 0 || this.beta > 0;
  }

  /** What is written for a value computed in `computeMs` that is fresh for `ttl` seconds. */
  wrap(value: unknown, ttl: number | undefined, computeMs: number): unknown {
    if (!this.enveloped) return value;
    return { [FRESH_UNTIL]: ttl ? Date.now() + ttl * 1000 : 0, value, computeMs } satisfies Entry;
  }

  /** How long the backend keeps an entry fresh for `ttl`: stale ones stay `staleTtl` longer. */
  physicalTtl(ttl: number | undefined): number | undefined {
    return ttl === undefined || ttl === 0 ? ttl : ttl + this.staleTtl;
  }

  /**
   * Whether serving `entry` now calls for a refresh: past its freshness (it is kept only within
   * `staleTtl`), or early by XFetch's draw (`now - computeMs·beta·ln(random) ≥ freshUntil`).
   */
  due(entry: unknown): Due | undefined {
    if (!isEntry(entry)) return undefined;
    const freshUntil = entry[FRESH_UNTIL];
    if (freshUntil === 0) return undefined;
    const now = Date.now();
    if (freshUntil <= now) return 'stale';
    return this.beta !== 0 && now - entry.computeMs * this.beta * Math.log(Math.random()) >= freshUntil ? 'early' : undefined;
  }

  /** Milliseconds for measuring a computation, which only entries with freshness keep: others skip the clock. */
  clock(): number {
    return this.enveloped ? performance.now() : 0;
  }
}
