import { MISS } from './backend.js';

/** Adds `deltas` in order to the number at `key` in one compare-and-swap; resolves with the value after each. */
export type SwapMany = (key: string, deltas: readonly number[]) => Promise<number[]>;

/**
 * The value after each of `deltas`, added in order to `current` (MISS: a new counter, 0); throws
 * when `current` is not a number or a sum is not finite.
 */
export function sums(current: unknown, deltas: readonly number[]): number[] {
  if (current !== MISS && typeof current !== 'number') throw new Error('the stored value is not a number');
  let value = current === MISS ? 0 : current;
  const values = deltas.map((delta) => (value += delta));
  if (!Number.isFinite(value)) throw new Error('the result is not a finite number');
  return values;
}

interface Waiter {
  readonly delta: number;
  resolve(value: number): void;
  reject(error: unknown): void;
}

/**
 * Increments of signed counters, which the server cannot add to itself: each is a read, a sum
 * and a compare-and-swap. Concurrent increments of one key in this process would mostly lose
 * that swap to each other and retry, so they queue per key, and everything queued while a swap
 * runs goes in the next one, in order: each caller still gets the value its own increment
 * produced. Only other processes' writes make a swap retry.
 */
export class SwapCounters {
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly swapMany: SwapMany) {}

  add(key: string, delta: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const queued = this.queues.get(key);
      if (queued !== undefined) {
        queued.push({ delta, resolve, reject });
        return;
      }
      this.queues.set(key, [{ delta, resolve, reject }]);
      void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    for (;;) {
      const batch = this.queues.get(key)!;
      if (batch.length === 0) {
        this.queues.delete(key);
        return;
      }
      // Calls arriving while this batch swaps wait in a new array: the next batch.
      this.queues.set(key, []);
      try {
        const values = await this.swapMany(
          key,
          batch.map((waiter) => waiter.delta),
        );
        batch.forEach((waiter, index) => waiter.resolve(values[index]));
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
  }
}
