// hoard's OpenTelemetry metrics, scraped by Prometheus: an exporter serves them on
// http://127.0.0.1:PORT/metrics (default 9464) while a small workload runs.
// Run it with `PORT=9464 node build/examples/otel-prometheus/main.js`, then
// `curl http://127.0.0.1:9464/metrics`; it stops on SIGTERM or Ctrl-C.
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { cached, CacheModule, MemoryBackend } from 'hoard';
import { instrumentHoard } from 'hoard/otel';

const port = Number(process.env.PORT ?? 9464);
const exporter = new PrometheusExporter({ host: '127.0.0.1', port });
const meterProvider = new MeterProvider({ readers: [exporter] });
instrumentHoard({ meterProvider }); // the one line: every cached call is now measured

CacheModule.register(new MemoryBackend({ maxEntries: 2 }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const price = cached(
  async (item: string) => {
    await sleep(20); // stands in for a slow query
    return item.length * 100;
  },
  { name: 'price', ttl: 60 },
);

// 3 misses and 3 hits; the third item evicts the first from a memory cache of two entries.
for (const item of ['apple', 'apple', 'pear', 'pear', 'apple', 'fig']) await price(item);

console.log(`hoard metrics on http://127.0.0.1:${port}/metrics`);

// Traffic goes on (a hit every half second), which also keeps the process alive: the
// exporter's server does not.
const traffic = setInterval(() => void price('fig'), 500);

const stop = async () => {
  clearInterval(traffic);
  await meterProvider.shutdown(); // also stops the exporter's HTTP server
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
