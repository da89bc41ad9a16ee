import {
  MemoryBackend,
  RedisBackend,
  RedisBus,
  TieredBackend,
  type BusListener,
  type Invalidation,
  type TieredBackendOptions,
} from 'hoard';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` every 10 ms until it holds; fails once `withinMs` have passed. The bound is
 * the promise under test (e.g. "within 1 s"), not a measurement.
 */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, withinMs = 1000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await sleep(10);
  }
}

/** A bus listener that keeps what it was told. */
export function recordingListener(): BusListener & { received: Invalidation[]; connects: number } {
  return {
    received: [],
    connects: 0,
    invalidated(invalidation) {
      this.received.push(invalidation);
    },
    connected() {
      this.connects++;
    },
  };
}

export interface Tier {
  readonly tiered: TieredBackend;
  readonly l1: MemoryBackend;
  readonly l2: RedisBackend;
  readonly bus: RedisBus;
}

/**
 * One "process": its own L1, its own Redis connections for L2 and for the bus. Tiers made with
 * the same `prefix` and `channel` share entries and hear each other, like two processes would.
 */
export function tierOver(
  url: { l2: string; bus?: string },
  shared: { prefix: string; channel: string },
  options: Partial<TieredBackendOptions> & { l2Timeout?: number } = {},
): Tier {
  const l1 = new MemoryBackend();
  const l2 = new RedisBackend({ url: url.l2, prefix: shared.prefix, timeout: options.l2Timeout });
  const bus = new RedisBus({ url: url.bus ?? url.l2, channel: shared.channel });
  const tiered = new TieredBackend({ l1, l2, bus, l1Ttl: options.l1Ttl });
  return { tiered, l1, l2, bus };
}
