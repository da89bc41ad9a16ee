import { cached, CacheModule, RedisBackend, type CachedFunctionOptions } from 'hoard';
import type { RedisServer } from '../../spec/support/servers.js';
import type { Section } from '../report.js';

/*
 * The stampede defences of docs/stampedes.md, each with and without, on a real Redis: how many
 * times the method computes and what the slowest callers wait (p99 and max of their latencies).
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const COMPUTE_MS = 50;

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

interface Outcome {
  computations: number;
  latencies: number[];
}

let runs = 0;

/**
 * `processes` backends on their own connections stand for as many application servers (each
 * with its own in-process single flight); a function named alike is cached on each.
 */
function processes(server: RedisServer, count: number, options: Omit<CachedFunctionOptions, 'name' | 'backend'>) {
  const prefix = `defences${runs++}:`;
  const outcome: Outcome = { computations: 0, latencies: [] };
  const backends = Array.from({ length: count }, (_, i) => {
    const backend = new RedisBackend({ url: server.url, prefix });
    CacheModule.register(`process${i}`, backend);
    return backend;
  });
  const compute = async (id: number) => {
    outcome.computations++;
    await sleep(COMPUTE_MS);
    return { id };
  };
  const fns = backends.map((_, i) => cached(compute, { ...options, name: 'report', backend: `process${i}` }));
  const call = async (process: number, id: number) => {
    const start = performance.now();
    await fns[process]!(id);
    outcome.latencies.push(performance.now() - start);
  };
  const close = () => Promise.all(backends.map((backend) => backend.close()));
  return { outcome, call, close };
}

/** 4 processes × 50 concurrent calls on one cold key. */
async function coldKeyAcrossProcesses(server: RedisServer, lock: boolean): Promise<Outcome> {
  const fleet = processes(server, 4, { ttl: 60, lock });
  await Promise.all(Array.from({ length: 200 }, (_, i) => fleet.call(i % 4, 1)));
  await fleet.close();
  return fleet.outcome;
}

/** 8 callers in one process hit one key (ttl 1 s) back to back for `seconds`. */
async function hotKey(
  server: RedisServer,
  seconds: number,
  options: Omit<CachedFunctionOptions, 'name' | 'backend'>,
): Promise<Outcome> {
  const fleet = processes(server, 1, { ttl: 1, ...options });
  await fleet.call(0, 1);
  fleet.outcome.latencies.length = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        await fleet.call(0, 1);
        await sleep(2);
      }
    }),
  );
  await fleet.close();
  return fleet.outcome;
}

export async function defences(server: RedisServer, quick: boolean): Promise<Section> {
  const seconds = quick ? 2.5 : 5.5;
  const cases: [string, string, () => Promise<Outcome>][] = [
    ['lock', '4 processes × 50 calls, cold key, without `lock`', () => coldKeyAcrossProcesses(server, false)],
    ['lock', '4 processes × 50 calls, cold key, `lock: true`', () => coldKeyAcrossProcesses(server, true)],
    ['early refresh', `hot key, ttl 1 s, ${seconds} s of calls, without`, () => hotKey(server, seconds, {})],
    [
      'early refresh',
      `hot key, ttl 1 s, ${seconds} s of calls, \`earlyRefresh: true\``,
      () => hotKey(server, seconds, { earlyRefresh: true }),
    ],
    ['stale', `hot key, ttl 1 s, ${seconds} s of calls, \`staleTtl: 60\``, () => hotKey(server, seconds, { staleTtl: 60 })],
  ];
  const rows: string[][] = [];
  for (const [defence, setting, run] of cases) {
    CacheModule.reset();
    const { computations, latencies } = await run();
    const waited = latencies.filter((ms) => ms >= COMPUTE_MS / 2).length;
    rows.push([
      defence,
      setting,
      String(computations),
      String(latencies.length),
      String(waited),
      `${percentile(latencies, 0.99).toFixed(1)} ms`,
      `${Math.max(...latencies).toFixed(1)} ms`,
    ]);
  }
  CacheModule.reset();
  return {
    title: 'Stampede defences, with and without',
    description:
      `On a real Redis; the method takes ${COMPUTE_MS} ms. \`lock\`: four backends on their own connections stand for four ` +
      'application servers (each has its own in-process single flight), 50 concurrent calls each on one cold key. ' +
      '`earlyRefresh` and `staleTtl`: eight callers in one process call one key with a 1 s ttl back to back (2 ms apart); ' +
      'without a defence every expiry makes callers wait for the computation (the first, cold call is not counted). ' +
      'Latency is per call: how many calls waited at least half a computation, p99 and max.',
    columns: [
      'Defence',
      'Setting',
      'Computations',
      'Calls',
      `Calls that waited ≥ ${COMPUTE_MS / 2} ms`,
      'p99 latency',
      'Max latency',
    ],
    rows,
    bars: [],
    targets: [],
  };
}
