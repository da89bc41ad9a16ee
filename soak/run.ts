/**
 * The soak: worker processes call decorated methods on a TieredBackend (memory in front of
 * Redis, with a RedisBus), on Redis alone and on two memcached servers, while this script
 * kills (SIGKILL, then restart on the same port) and hangs (SIGSTOP, then SIGCONT) the servers
 * at random. Bounded in time; loopback only; the servers are its own, on free ports.
 *
 *   npm run soak                          # 120 s, 4 workers
 *   npm run soak -- --duration 30 --workers 2
 *
 * Passes (exit 0) when no call returned a wrong value, no decorated call rejected, nothing was
 * unhandled, and every backend served hits again after the last outage. The last line is a
 * summary; with --json, a JSON line follows it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startMemcached, startRedis, type ManagedServer } from '../spec/support/servers.js';
import type { FromWorker, ToWorker, WorkerConfig, WorkerReport } from './protocol.js';
import { COMPUTE_MS } from './workload.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '120' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '8' },
    timeout: { type: 'string', default: '0.2' },
    json: { type: 'boolean', default: false },
  },
});
const durationMs = Number(args.duration) * 1000;
const workerCount = Number(args.workers);
const timeoutMs = Number(args.timeout) * 1000;
/** Scheduling on a loaded machine adds to every call: allowed on top of timeout + compute. */
const SLACK_MS = 100;
/** SPEC: a backend whose server returns is used again within 5 seconds. */
const RECOVERY_LIMIT_MS = 5000;
const WARM_UP_MS = Math.min(5000, durationMs / 10);
/** Healthy stretches and faults, per server, in ms. */
const HEALTHY_MS = [1000, 5000] as const;
const FAULT_MS = [300, 2500] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = ([low, high]: readonly [number, number]) => low + Math.random() * (high - low);

interface Outages {
  kills: number;
  hangs: number;
}

/** Faults one server at random until `until`; every fault ends with the server answering again. */
async function chaos(server: ManagedServer, until: number, outages: Outages): Promise<void> {
  for (;;) {
    await sleep(Math.min(between(HEALTHY_MS), until - Date.now()));
    const length = between(FAULT_MS);
    if (Date.now() + length >= until) return;
    if (Math.random() < 0.5) {
      await server.kill();
      await sleep(length);
      await server.restart();
      outages.kills++;
    } else {
      await server.pause();
      await sleep(length);
      server.resume();
      outages.hangs++;
    }
  }
}

function message(worker: ChildProcess, type: FromWorker['type']): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (received: FromWorker) => {
      if (received.type !== type) return;
      worker.off('message', onMessage);
      resolve(received);
    };
    worker.on('message', onMessage);
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before sending '${type}'`)));
  });
}

const tell = (workers: ChildProcess[], type: ToWorker['type']) =>
  workers.forEach((worker) => worker.send({ type } satisfies ToWorker));

const redis = await startRedis();
const memcached = await Promise.all([startMemcached(), startMemcached()]);
const servers = [redis, ...memcached];
/** Tiered(Memory, Redis) with a RedisBus, Redis alone, and two memcached servers. */
const backends = ['tiered', 'redis', 'memcached'];
const latencyBoundMs = timeoutMs + COMPUTE_MS + SLACK_MS;

const workers = Array.from({ length: workerCount }, (_, id) => {
  const config: WorkerConfig = {
    id,
    redisUrl: redis.url,
    memcached: memcached.map((server) => server.address),
    backends,
    timeoutMs,
    latencyBoundMs,
    concurrency: Number(args.concurrency),
    recoveryLimitMs: RECOVERY_LIMIT_MS,
  };
  return fork(fileURLToPath(new URL('./worker.js', import.meta.url)), {
    env: { ...process.env, SOAK_WORKER: JSON.stringify(config) },
    execArgv: ['--expose-gc'],
  });
});

const started = Date.now();
await Promise.all(workers.map((worker) => message(worker, 'ready')));
const reports = Promise.all(
  workers.map((worker) => message(worker, 'report').then((received) => (received as { report: WorkerReport }).report)),
);
tell(workers, 'run');
await sleep(WARM_UP_MS);
tell(workers, 'mark');

const outages: Outages = { kills: 0, hangs: 0 };
const until = started + durationMs;
await Promise.all(servers.map((server) => chaos(server, until, outages)));
// A last outage of every server at once, so that the recovery check measures a real comeback.
await Promise.all(servers.map((server) => server.kill()));
await sleep(FAULT_MS[0]);
await Promise.all(servers.map((server) => server.restart()));
outages.kills += servers.length;
tell(workers, 'stop');
const done = await Promise.race([reports, sleep(60_000).then(() => undefined)]);
for (const worker of workers) worker.kill('SIGKILL');
await Promise.all(servers.map((server) => server.stop()));
if (done === undefined) {
  console.error('soak: workers did not report within 60 s of the stop');
  process.exit(1);
}

const sum = (field: keyof WorkerReport) => done.reduce((total, report) => total + (report[field] as number), 0);
const average = (field: keyof WorkerReport) => sum(field) / done.length;
const slowest = done.reduce((a, b) => (b.maxLatencyMs > a.maxLatencyMs ? b : a));
const recovery = Object.fromEntries(
  backends.map((backend) => [backend, Math.max(...done.map((report) => report.recoveryMs[backend] ?? -1))]),
);
const recovered = done.every((report) => backends.every((backend) => (report.recoveryMs[backend] ?? -1) >= 0));
function ratio(backend: string): number {
  const hits = done!.reduce((total, report) => total + (report.hits[backend] ?? 0), 0);
  const misses = done!.reduce((total, report) => total + (report.misses[backend] ?? 0), 0);
  return hits / (hits + misses || 1);
}
const summary = {
  seconds: Math.round((Date.now() - started) / 1000),
  workers: workerCount,
  backends,
  calls: sum('calls'),
  wrong: sum('wrong'),
  callerErrors: sum('callerErrors'),
  unhandled: sum('unhandled'),
  errorsReported: sum('errorsReported'),
  directCalls: sum('directCalls'),
  directFailures: sum('directFailures'),
  outages: outages.kills + outages.hangs,
  kills: outages.kills,
  hangs: outages.hangs,
  maxLatencyMs: Math.round(slowest.maxLatencyMs),
  slowestCall: slowest.slowestCall,
  latencyBoundMs,
  overBound: sum('overBound'),
  overBoundCalls: done.flatMap((report) => report.overBoundCalls),
  maxLoopDelayMs: Math.round(Math.max(...done.map((report) => report.maxLoopDelayMs))),
  rssStartMb: Math.round(average('rssStart')),
  rssEndMb: Math.round(average('rssEnd')),
  heapStartMb: Math.round(average('heapStart')),
  heapEndMb: Math.round(average('heapEnd')),
  hitRatio: Object.fromEntries(backends.map((backend) => [backend, ratio(backend)])),
  recoveryMs: recovery,
  samples: done.flatMap((report) => report.samples),
};
const passed = summary.wrong === 0 && summary.callerErrors === 0 && summary.unhandled === 0 && recovered;

for (const line of [...summary.samples, ...summary.overBoundCalls]) console.log(line);
console.log(
  `soak: ${summary.seconds} s, ${summary.workers} workers over ${backends.join(' + ')}: ` +
    `${summary.calls.toLocaleString('en')} calls, ${summary.errorsReported.toLocaleString('en')} errors reported, ` +
    `${summary.outages} outages survived (${summary.kills} kills, ${summary.hangs} hangs), ` +
    `hit ratio ${backends.map((backend) => `${backend} ${summary.hitRatio[backend]!.toFixed(2)}`).join(', ')}, ` +
    `wrong values ${summary.wrong}, rejected calls ${summary.callerErrors}, unhandled rejections ${summary.unhandled}, ` +
    `max latency ${summary.maxLatencyMs} ms (bound ${latencyBoundMs} ms = timeout ${timeoutMs} + compute ${COMPUTE_MS} + slack ${SLACK_MS}; ${summary.overBound} over; ` +
    `event loop held up to ${summary.maxLoopDelayMs} ms), ` +
    `recovered in ${backends.map((backend) => `${backend} ${Math.round(recovery[backend]!)} ms`).join(', ')}, ` +
    `RSS ${summary.rssStartMb} → ${summary.rssEndMb} MB, heap ${summary.heapStartMb} → ${summary.heapEndMb} MB per worker` +
    ` — ${passed ? 'PASS' : 'FAIL'}`,
);
if (args.json) console.log(JSON.stringify({ ...summary, passed }));
process.exit(passed ? 0 : 1);
