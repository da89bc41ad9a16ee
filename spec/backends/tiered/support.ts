import { MemoryBackend, MISS, RedisBackend } from 'hoard';
import type { BusListener, Invalidation } from '#src/bus/bus.js';
import { RedisBus } from '#src/bus/redis-bus.js';
import { TieredBackend, type LookupWithTtl, type TieredBackendOptions } from '#src/backends/tiered/tiered-backend.js';

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

/**
 * Until RedisBackend offers `lookupWithTtl` itself: the same answer from GET and PTTL on its own
 * client, so that L1 copies expire with the L2 entry (what the conformance TTL specs ask).
 */
export function withRemainingTtl(l2: RedisBackend): RedisBackend & LookupWithTtl {
  return Object.assign(l2, {
    async lookupWithTtl(key: string) {
      const [value, ms] = await Promise.all([l2.lookup(key), l2.client.pttl(l2.prefix + key)]);
      return value === MISS ? MISS : { value, ttl: ms > 0 ? ms / 1000 : 0 };
    },
  });
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
  options: Partial<TieredBackendOptions> & { l2Timeout?: number; remainingTtl?: boolean } = {},
): Tier {
  const l1 = new MemoryBackend();
  const l2 = new RedisBackend({ url: url.l2, prefix: shared.prefix, timeout: options.l2Timeout });
  if (options.remainingTtl) withRemainingTtl(l2);
  const bus = new RedisBus({ url: url.bus ?? url.l2, channel: shared.channel });
  const tiered = new TieredBackend({ l1, l2, bus, l1Ttl: options.l1Ttl });
  return { tiered, l1, l2, bus };
}
