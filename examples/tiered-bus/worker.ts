// One of the two processes of the tiered example (main.ts starts them). It caches prices in a
// TieredBackend — memory in this process, Redis shared — with or without a RedisBus, and
// answers main.ts's commands over IPC.
import { Redis } from 'ioredis';
import { Cached, CacheModule, CachePut, MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';
import type { Command, Reply } from './protocol.js';

const [name, mode] = process.argv.slice(2) as [string, 'bus' | 'no-bus'];
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `tiered-example:${mode}:`;

/** The "database": a Redis hash (outside the cache's prefix), read when the cache misses. */
const database = new Redis(url);
const table = `tiered-example-db:${mode}`;

const l2 = new RedisBackend({ url, prefix });
const tiered = new TieredBackend({
  l1: new MemoryBackend({ maxEntries: 1_000 }),
  l2,
  bus: mode === 'bus' ? new RedisBus({ client: l2.client, channel: `${prefix}invalidations` }) : undefined,
  l1Ttl: 10, // without a bus, another process's write reaches this memory tier only after this
});
CacheModule.register(tiered);

const priceKey = (item: string) => `price:${item}`;

class Prices {
  @Cached({ ttl: 60, key: priceKey })
  async price(item: string): Promise<number> {
    return Number(await database.hget(table, item));
  }

  @CachePut({ ttl: 60, key: priceKey }) // writes the database, then the cache; the bus tells the others
  async setPrice(item: string, price: number): Promise<number> {
    await database.hset(table, item, price);
    return price;
  }
}

const prices = new Prices();
let lastLookupHit = false;
CacheModule.on('hit', () => (lastLookupHit = true));

async function handle(command: Command): Promise<Reply> {
  switch (command.type) {
    case 'seed':
      await database.hset(table, command.item, command.price);
      await tiered.clear(); // start from an empty cache, whatever an earlier run left
      return { type: 'done' };
    case 'read': {
      const inMemory = tiered.l1.has(priceKey(command.item));
      lastLookupHit = false;
      const price = await prices.price(command.item);
      const from = inMemory ? `${name}'s memory` : lastLookupHit ? 'Redis' : 'the database';
      return { type: 'price', price, from };
    }
    case 'write':
      await prices.setPrice(command.item, command.price);
      return { type: 'done' };
    case 'watch': {
      // Until this process's memory copy is gone (dropped by a bus message), or `withinMs` passes.
      const start = Date.now();
      while (tiered.l1.has(priceKey(command.item)) && Date.now() - start < command.withinMs) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return { type: 'watched', dropped: !tiered.l1.has(priceKey(command.item)), at: Date.now() };
    }
    case 'close':
      await CacheModule.close();
      database.disconnect();
      return { type: 'done' };
  }
}

process.on('message', (command: Command) => {
  void handle(command).then((reply) => process.send!(reply));
});

// Ready once the bus listens: a message published before that would not reach this process.
while (tiered.bus !== undefined && !tiered.bus.connected) await new Promise((resolve) => setTimeout(resolve, 10));
process.send!({ type: 'done' } satisfies Reply);
