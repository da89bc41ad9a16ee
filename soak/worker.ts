/**
 * One soak worker process: registers the backends, runs `concurrency` loops of random
 * decorated calls, checks every returned value against its arguments, and reports counts,
 * latencies, memory and a recovery check to the orchestrator (run.ts) over IPC.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isDeepStrictEqual, inspect } from 'node:util';
import { CacheModule, MemcachedBackend, MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';
import { awkwardStrings, expected, tagOf, workloadOn, type Workload } from './workload.js';
import type { ToWorker, WorkerConfig, WorkerReport } from './protocol.js';

const config = JSON.parse(process.env.SOAK_WORKER!) as WorkerConfig;
const send = (message: unknown) => process.send!(message);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const int = (below: number) => Math.floor(Math.random() * below);
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;

const report: WorkerReport = {
  id: config.id,
  calls: 0,
  wrong: 0,
  callerErrors: 0,
  errorsReported: 0,
  directCalls: 0,
  directFailures: 0,
  unhandled: 0,
  maxLatencyMs: 0,
  slowestCall: '',
  overBound: 0,
  overBoundCalls: [],
  maxLoopDelayMs: 0,
  rssStart: 0,
  rssEnd: 0,
  heapStart: 0,
  heapEnd: 0,
  hits: {},
  misses: {},
  recoveryMs: {},
  samples: [],
};

function sample(text: string): void {
  if (report.samples.length < 5) report.samples.push(`worker ${config.id}: ${text}`);
}

// The promises the soak is about: nothing may reject unhandled, nothing may throw uncaught.
process.on('unhandledRejection', (reason) => {
  report.unhandled++;
  sample(`unhandled rejection: ${inspect(reason)}`);
});
process.on('uncaughtException', (error) => {
  report.unhandled++;
  sample(`uncaught exception: ${inspect(error)}`);
});

const timeout = config.timeoutMs / 1000;
CacheModule.register('redis', new RedisBackend({ url: config.redisUrl, prefix: 'soak:', timeout }));
const l2 = new RedisBackend({ url: config.redisUrl, prefix: 'soak-tiered:', timeout });
CacheModule.register(
  'tiered',
  new TieredBackend({
    l1: new MemoryBackend({ maxEntries: 2_000 }),
    l2,
    bus: new RedisBus({ client: l2.client, channel: 'soak-tiered:invalidations', timeout }),
    l1Ttl: 5,
  }),
);
CacheModule.register('memcached', new MemcachedBackend({ servers: config.memcached, prefix: 'soak:', timeout }));
CacheModule.on('error', () => report.errorsReported++);

const workloads = config.backends.map((backend) => ({ backend, Workload: workloadOn(backend) }));

/** One decorated call: its name for reports, the call, and the value its arguments must give. */
interface Call {
  what: string;
  run(): Promise<unknown>;
  expected: unknown;
}

/** Methods of one number argument: how often each is called (of 100) and the range of its argument. */
const numeric = {
  square: { weight: 20, below: 400 },
  maybe: { weight: 8, below: 300 },
  stale: { weight: 8, below: 200 },
  tagged: { weight: 8, below: 200 },
  early: { weight: 8, below: 200 },
  written: { weight: 14, below: 100 },
} as const;

function randomCall(workload: Workload): Call {
  let roll = int(100);
  for (const [name, { weight, below }] of Object.entries(numeric) as [
    keyof typeof numeric,
    (typeof numeric)[keyof typeof numeric],
  ][]) {
    roll -= weight;
    if (roll >= 0) continue;
    const n = int(below);
    return { what: `${name}(${n})`, run: () => workload[name](n), expected: expected[name](n) };
  }
  // The remaining 34 of 100.
  if (roll < 12) {
    const id = `${pick(awkwardStrings)}${int(20)}`;
    const locale = pick(['en', 'fr', 'ja']);
    const fields = ['a', 'b', 'c'].slice(int(3));
    // Same arguments, properties in either order: one key.
    const options = int(2) === 0 ? { locale, fields } : { fields, locale };
    return {
      what: `profile(${inspect(id)}, ${inspect(options)})`,
      run: () => workload.profile(id, options),
      expected: expected.profile(id, options),
    };
  }
  if (roll < 22) {
    const text = `${pick(awkwardStrings)}${int(50)}`;
    return { what: `length(${inspect(text)})`, run: () => workload.length(text), expected: expected.length(text) };
  }
  const n = int(numeric.written.below);
  if (roll < 28) return { what: `write(${n})`, run: () => workload.write(n), expected: expected.written(n) };
  return { what: `remove(${n})`, run: () => workload.remove(n), expected: undefined };
}

/** Calls made on CacheModule directly: they do not fail open, so a rejection during an outage is expected. */
async function directCall(Workload: Function): Promise<void> {
  report.directCalls++;
  try {
    if (int(3) === 0) await CacheModule.invalidateTags([tagOf(int(5))]);
    else await CacheModule.invalidate(Workload, 'square', int(400));
  } catch {
    report.directFailures++;
  }
}

let stopping = false;

async function loop(): Promise<void> {
  const instances = workloads.map(({ backend, Workload }) => ({ backend, Workload, workload: new Workload() }));
  while (!stopping) {
    const { backend, Workload, workload } = pick(instances);
    if (int(100) < 2) {
      await directCall(Workload);
      continue;
    }
    const call = randomCall(workload);
    const start = performance.now();
    try {
      const value = await call.run();
      if (!isDeepStrictEqual(value, call.expected)) {
        report.wrong++;
        sample(`wrong value from ${call.what}: got ${inspect(value)}, expected ${inspect(call.expected)}`);
      }
    } catch (error) {
      report.callerErrors++;
      sample(`${call.what} rejected: ${inspect(error)}`);
    }
    const ms = performance.now() - start;
    report.calls++;
    if (ms > report.maxLatencyMs) {
      report.maxLatencyMs = ms;
      report.slowestCall = `${backend} ${call.what}`;
    }
    if (ms > config.latencyBoundMs) {
      report.overBound++;
      if (report.overBoundCalls.length < 5)
        report.overBoundCalls.push(`worker ${config.id}: ${backend} ${call.what} took ${Math.round(ms)} ms`);
    }
    // A short pause per call keeps the workers from starving the servers of CPU.
    await sleep(1);
  }
}

/** Heap and RSS in MB after a full collection, so that garbage not yet collected does not count. */
function memory(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss: rss / 2 ** 20, heap: heapUsed / 2 ** 20 };
}

/**
 * After the last outage: how long until each backend stores and serves again. A hit on the
 * second call of a fresh key needs a lookup and a store that both worked.
 */
async function recoveryCheck(): Promise<void> {
  await Promise.all(
    workloads.map(async ({ backend, Workload }) => {
      const workload = new Workload();
      const start = performance.now();
      while (performance.now() - start < config.recoveryLimitMs) {
        const token = `${config.id}-${Math.random()}`;
        await workload.probe(token);
        const hits = CacheModule.stats().backends[backend]?.hits ?? 0;
        await workload.probe(token);
        if ((CacheModule.stats().backends[backend]?.hits ?? 0) > hits) {
          report.recoveryMs[backend] = performance.now() - start;
          return;
        }
        await sleep(50);
      }
      report.recoveryMs[backend] = -1;
    }),
  );
}

let loops: Promise<void>[] = [];
/** How late timers fire: time this process was not running JavaScript (GC, CPU starvation). */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

process.on('message', (message: ToWorker) => {
  if (message.type === 'run') {
    loops = Array.from({ length: config.concurrency }, loop);
  } else if (message.type === 'mark') {
    loopDelay.enable();
    const { rss, heap } = memory();
    report.rssStart = rss;
    report.heapStart = heap;
  } else if (message.type === 'stop') {
    stopping = true;
    loopDelay.disable();
    report.maxLoopDelayMs = loopDelay.max / 1e6;
    void Promise.all(loops)
      .then(() => {
        for (const [backend, counts] of Object.entries(CacheModule.stats().backends)) {
          report.hits[backend] = counts.hits;
          report.misses[backend] = counts.misses;
        }
      })
      .then(recoveryCheck)
      .then(async () => {
        const { rss, heap } = memory();
        report.rssEnd = rss;
        report.heapEnd = heap;
        send({ type: 'report', report });
        await CacheModule.close();
        process.disconnect();
      });
  }
});

send({ type: 'ready' });
