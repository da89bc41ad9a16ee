// The quick start: a slow method cached on the in-memory backend.
// Run it with `npm run example`.
import { Cached, CacheModule, MemoryBackend } from 'hoard';

CacheModule.register(new MemoryBackend({ maxEntries: 10_000 })); // once, at startup

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Reports {
  @Cached({ ttl: 300 }) // five minutes; the key comes from the arguments
  async calculateValue(region: string, year: number): Promise<number> {
    await sleep(500); // stands in for a slow database query
    return region.length * year;
  }
}

// The same thing by hand, the classic cache-aside pattern, on the same backend.
async function getMyItem(): Promise<number> {
  const cache = CacheModule.get();
  let rv = (await cache.get('my-item')) as number | undefined;
  if (rv === undefined) {
    rv = await new Reports().calculateValue('latam', 2023);
    await cache.set('my-item', rv, 5 * 60);
  }
  return rv;
}

async function timed<T>(label: string, run: () => Promise<T>): Promise<number> {
  const start = performance.now();
  const value = await run();
  const ms = performance.now() - start;
  console.log(`${label.padEnd(28)} ${String(value).padStart(6)}  in ${ms.toFixed(3).padStart(8)} ms`);
  return ms;
}

const reports = new Reports();
const cold = await timed('first call (runs the body)', () => reports.calculateValue('emea', 2024));
const warm = await timed('second call (cache hit)', () => reports.calculateValue('emea', 2024));
await timed('other arguments (miss)', () => reports.calculateValue('americas', 2024));
await timed('cache-aside getMyItem()', getMyItem);
await timed('cache-aside again (hit)', getMyItem);

console.log(`\nspeed-up of a hit: ${Math.round(cold / warm).toLocaleString('en')}x`);
console.log('stats:', JSON.stringify(CacheModule.stats().methods));
