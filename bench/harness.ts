import { check, optionsFor, type Lookup } from './workload.js';

/** What a run may spend; `--quick` shrinks it all. */
export interface Budget {
  /** How long each subject is driven per round of a throughput scenario. */
  readonly sliceMs: number;
  /** Timed rounds of a throughput scenario (after one untimed round). */
  readonly rounds: number;
  /** Repetitions of the stampede and heap scenarios, whose every repetition takes a while. */
  readonly repetitions: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Operations a caller finished and the wall time they took. */
export interface Throughput {
  readonly ops: number;
  readonly ms: number;
}

export const opsPerSecond = ({ ops, ms }: Throughput): number => (ops * 1000) / ms;

/**
 * Calls `lookup` with ids from `nextId` from `inFlight` concurrent callers, each awaiting its
 * call before the next, until `sliceMs` has passed; every result is checked against its id.
 * The clock is read once every 64 calls, so reading it costs every subject alike
 * and little.
 */
export async function drive(
  lookup: Lookup,
  subject: string,
  nextId: () => number,
  inFlight: number,
  sliceMs: number,
): Promise<Throughput> {
  let ops = 0;
  let stopped = false;
  const start = performance.now();
  const deadline = start + sliceMs;
  const caller = async (): Promise<void> => {
    while (!stopped) {
      const id = nextId();
      check(await lookup(id, optionsFor(id)), id, subject);
      // Counted over all callers, not per caller: with 1024 callers a per-caller count ran a
      // slow subject's slice for seconds past its end.
      if ((++ops & 63) === 0 && performance.now() >= deadline) stopped = true;
    }
  };
  const callers: Promise<void>[] = [];
  for (let i = 0; i < inFlight; i++) callers.push(caller());
  await Promise.all(callers);
  return { ops, ms: performance.now() - start };
}

/**
 * Runs `measure` for every entry, `rounds` times, interleaved: each round visits every entry
 * once, starting one entry further along than the round before, so no entry always runs
 * first or right after the same neighbour. Returns each entry's samples in entry order.
 */
export async function interleave<T, S>(entries: readonly T[], rounds: number, measure: (entry: T) => Promise<S>): Promise<S[][]> {
  const samples: S[][] = entries.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let step = 0; step < entries.length; step++) {
      const index = (round + step) % entries.length;
      samples[index]!.push(await measure(entries[index]!));
      // A turn of the event loop between entries, as between a service's requests: a memory
      // subject's calls run on microtasks alone, so what a library defers to the next tick, an
      // immediate or a timer would never run. Without it the heap grew round after round, and
      // memoizee's hits all took the path of an entry still pending (docs/benchmarks.md).
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return samples;
}
