// The slow endpoint's latency without a cache, then with hoard on Redis:
//   npm run example && REDIS_URL=redis://127.0.0.1:6379 node build/examples/http-service/latency.js
import type { AddressInfo } from 'node:net';
import { CacheModule, NullBackend, RedisBackend } from 'hoard';
import { createService, Reports, type Report } from './service.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REQUESTS = 10;

const reports = new Reports();
const server = createService(reports);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function timed(path: string, method = 'GET'): Promise<{ ms: number; body: unknown }> {
  const start = performance.now();
  const response = await fetch(base + path, { method });
  const body: unknown = await response.json();
  return { ms: performance.now() - start, body };
}

async function round(label: string): Promise<Report[]> {
  const queriesBefore = reports.queries;
  const times: number[] = [];
  const bodies: Report[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const { ms, body } = await timed('/reports/emea/2024');
    times.push(ms);
    bodies.push(body as Report);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `${label.padEnd(26)} first ${times[0].toFixed(1).padStart(6)} ms, ` +
      `median ${sorted[REQUESTS / 2].toFixed(1).padStart(6)} ms, ` +
      `queries run: ${reports.queries - queriesBefore} of ${REQUESTS} requests`,
  );
  return bodies;
}

console.log(`${REQUESTS} requests to GET /reports/emea/2024 (the query takes ~300 ms)\n`);

CacheModule.register(new NullBackend()); // before: caching off, every request runs the query
const before = await round('before (no cache)');

const missesBefore = CacheModule.stats().backends.default.misses;
const redis = new RedisBackend({ url: redisUrl, prefix: 'example-latency:' });
CacheModule.register(redis); // after: the same code, cached in Redis
await redis.clear(); // start cold, whatever an earlier run left
const after = await round('after (hoard on Redis)');

await timed('/reports/emea/2024/sales?amount=500', 'POST'); // a write evicts the report
const { ms, body } = await timed('/reports/emea/2024');
console.log(
  `${'after a write (evicted)'.padEnd(26)} first ${ms.toFixed(1).padStart(6)} ms, revenue ${(body as Report).revenue} (was ${after[0].revenue})`,
);

const same = after.every((report) => report.revenue === before[0].revenue);
const { hits, misses } = CacheModule.stats().backends.default;
console.log(`\ncached responses equal uncached ones: ${same}; Redis hits ${hits}, misses ${misses - missesBefore}`);

server.close();
await CacheModule.close();
