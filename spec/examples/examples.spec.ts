/**
 * The examples run as docs/index.md tells a reader to run them — compiled with
 * examples/tsconfig.json, started with `node` and a `REDIS_URL` — against a Redis this spec
 * starts, so they cannot rot.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, startRedis, type RedisServer } from '../support/servers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const built = (file: string) => join(root, 'build/examples', file);

/** Runs a compiled example to its end; rejects with its output when it fails. */
async function runExample(file: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [built(file)], {
    cwd: root,
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return stdout;
}

/** Resolves with everything the child printed once a line matches `pattern`. */
async function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<string> {
  let output = '';
  child.stdout!.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      if (pattern.test(output)) resolve(output);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}: ${output}`)));
  });
}

/**
 * Starts a compiled example that serves on a free port, waits until it prints `ready`, runs
 * `use` with the port, then stops it with SIGTERM and resolves with its exit code.
 */
async function serveExample(
  file: string,
  env: Record<string, string>,
  ready: RegExp,
  use: (port: number) => Promise<void>,
): Promise<number | null> {
  const port = await freePort();
  const child = spawn(process.execPath, [built(file)], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await waitForOutput(child, ready);
    await use(port);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    return code;
  } finally {
    child.kill('SIGKILL');
  }
}

describe('examples', function () {
  this.timeout(90_000);
  let redis: RedisServer;

  before(async () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await Promise.all([
      promisify(execFile)(process.execPath, [tsc, '-p', join(root, 'examples/tsconfig.json')], { cwd: root }),
      startRedis().then((server) => (redis = server)),
    ]);
  });

  after(async () => {
    await redis?.stop();
  });

  it('map-backend: a backend written from the documented API passes the conformance suite under node:test', async () => {
    // A child `node --test`, so the suite runs under node:test's own describe/it, not mocha's.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--test', '--test-reporter=tap', built('map-backend/conformance.test.js')],
      { cwd: root, timeout: 60_000 },
    );
    expect(stdout).to.match(/^# fail 0$/m);
    const passed = Number(/^# pass (\d+)$/m.exec(stdout)?.[1]);
    expect(passed).to.be.greaterThan(40);
    expect(stdout).to.match(/^\s*ok \d+ - uses the module's defaultTtl, handed down by register/m);
  });

  it('quick-start: the second call is a hit', async () => {
    const output = await runExample('quick-start.js');
    expect(output).to.match(/second call \(cache hit\) +\d+/);
    expect(output).to.include('"Reports.calculateValue":{"hits":1');
  });

  it('http-service/latency: one query for ten requests once cached in Redis, the same answers, a write evicts', async () => {
    const output = await runExample('http-service/latency.js', { REDIS_URL: redis.url });
    expect(output).to.match(/before \(no cache\) .* queries run: 10 of 10 requests/);
    expect(output).to.match(/after \(hoard on Redis\) .* queries run: 1 of 10 requests/);
    expect(output).to.match(/revenue 8096500 \(was 8096000\)/);
    expect(output).to.include('cached responses equal uncached ones: true; Redis hits 9, misses 2');
  });

  it('tiered-bus: with the bus, B drops its memory copy when A writes and reads the new price; without, B serves its old copy', async () => {
    const output = await runExample('tiered-bus/main.js', { REDIS_URL: redis.url });
    const [withBus, withoutBus] = output.split('Without a bus:') as [string, string];
    for (const run of [withBus, withoutBus]) {
      expect(run).to.include("A price('apple') → 100  (from the database)");
      expect(run).to.include("B price('apple') → 100  (from Redis)");
      expect(run).to.include("B price('apple') → 100  (from B's memory)");
    }
    expect(withBus).to.match(/B dropped its copy \d+ ms after A's write began/);
    expect(withBus).to.include("B price('apple') → 120  (from Redis)");
    expect(withoutBus).to.include('B still holds its copy 1000 ms later');
    expect(withoutBus.split('A setPrice')[1]).to.include("B price('apple') → 100  (from B's memory)");
  });

  it('otel-prometheus: the exporter serves hoard_calls_total by result, computation durations and memory gauges on a loopback port', async () => {
    const code = await serveExample('otel-prometheus/main.js', {}, /hoard metrics on/, async (port) => {
      const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const sample = (name: string, labels: string) => {
        const line = scrape.split('\n').find((candidate) => candidate.startsWith(`${name}{${labels}`));
        return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
      };
      const price = 'hoard_method="price",hoard_backend="default"';
      expect(sample('hoard_calls_total', `${price},hoard_result="miss"`)).to.equal(3);
      expect(sample('hoard_calls_total', `${price},hoard_result="hit"`)).to.be.at.least(3);
      expect(sample('hoard_computation_duration_count', price)).to.equal(3);
      expect(sample('hoard_memory_entries', 'hoard_backend="default"')).to.equal(2);
      expect(sample('hoard_memory_evictions_total', 'hoard_backend="default"')).to.equal(1);
      expect(scrape).not.to.match(/hoard_key|apple|pear/);
    });
    expect(code).to.equal(0);
  });

  it('http-service/server: serves the cached endpoint over HTTP from Redis and shuts down gracefully', async () => {
    const code = await serveExample('http-service/server.js', { REDIS_URL: redis.url }, /listening on/, async (port) => {
      const get = async (path: string, method = 'GET') => (await fetch(`http://127.0.0.1:${port}${path}`, { method })).json();
      const first = (await get('/reports/emea/2024')) as { revenue: number; computedAt: string };
      expect(await get('/reports/emea/2024')).to.deep.equal(first); // same computedAt: served from Redis
      expect(await get('/reports/emea/2024/sales?amount=7', 'POST')).to.deep.equal({ booked: true });
      expect(((await get('/reports/emea/2024')) as { revenue: number }).revenue).to.equal(first.revenue + 7);
      const stats = (await get('/stats')) as { queries: number; backends: { default: { hits: number; misses: number } } };
      expect(stats.queries).to.equal(2);
      expect(stats.backends.default).to.include({ hits: 1, misses: 2 });
    });
    expect(code).to.equal(0);
  });
});
