/**
 * `npm run bench [-- --quick] [scenario ...]`: runs the scenarios (all, or those whose names
 * start with a given filter), prints each table, and writes docs/benchmarks.md with its chart
 * docs/benchmarks.svg. A quick or filtered run writes its report under build/bench/ instead,
 * so the published figures always come from one complete run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMemcached, startRedis, type ManagedServer, type RedisServer } from '../spec/support/servers.js';
import type { Budget } from './harness.js';
import { analysisOf, markdownReport, svgChart, type Section } from './report.js';
import { heap } from './scenarios/heap.js';
import { memoryHit, memoryMiss } from './scenarios/memory.js';
import { memoryHitOtel } from './scenarios/otel.js';
import { remoteHit } from './scenarios/remote.js';
import { taggedHit } from './scenarios/tagged.js';
import { tieredEmptyL1, tieredHit } from './scenarios/tiered.js';
import { entriesCurve, inFlightCurve, keysCurve, stampedeCurve, valueSizeCurve } from './scenarios/curves.js';
import { stampede } from './scenarios/stampede.js';
import { defences } from './scenarios/defences.js';
import { storedValues } from './scenarios/stored-values.js';
import { memorySubjects } from './subjects/memory.js';
import { memcachedSubjects } from './subjects/memcached.js';
import { redisSubjects } from './subjects/redis.js';
import { tieredSubjects } from './subjects/tiered.js';

interface Scenario {
  readonly name: string;
  run(budget: Budget): Promise<Section[]>;
}

const FULL: Budget = { sliceMs: 100, rounds: 15, repetitions: 3 };
const QUICK: Budget = { sliceMs: 40, rounds: 5, repetitions: 1 };

/** Servers are started on first use, like the specs do (free loopback ports), and stopped at the end. */
const servers = {
  redis: undefined as Promise<RedisServer> | undefined,
  memcached: undefined as Promise<ManagedServer> | undefined,
};
const redis = () => (servers.redis ??= startRedis());
const memcached = () => (servers.memcached ??= startMemcached());

const scenarios: Scenario[] = [
  { name: 'memory-hit', run: async (budget) => [await memoryHit(budget)] },
  { name: 'memory-miss', run: async (budget) => [await memoryMiss(budget)] },
  {
    name: 'redis-hit',
    run: async (budget) =>
      remoteHit(
        {
          server: 'Redis',
          subjects: redisSubjects,
          description:
            'The same async method cached in a local redis-server started for the run; every subject has a Redis ' +
            'database of its own. Floor: an ioredis GET of `JSON.stringify([id, opts])` with auto-pipelining, JSON-parsed. ' +
            'hoard sends the lookups of one tick as one MGET, on a client without auto-pipelining (docs/backends.md).',
          hoard: 'hoard @Cached + RedisBackend',
          bounds: { 1: 1.0, 256: 0.95 },
          peerBounds: { 1: 1.0 },
        },
        await redis(),
        budget,
      ),
  },
  {
    name: 'memcached-hit',
    run: async (budget) =>
      remoteHit(
        {
          server: 'Memcached',
          subjects: memcachedSubjects,
          description:
            'The same async method cached in a local memcached started for the run; every subject has a key prefix ' +
            'of its own. Floor: memjs (binary protocol), the raw Node client, through its callback `get`, JSON-parsed.',
          hoard: 'hoard @Cached + MemcachedBackend',
          bounds: { 256: 1.0 },
        },
        await memcached(),
        budget,
      ),
  },
  {
    name: 'tiered-hit',
    run: async (budget) => [await tieredHit(await redis(), budget), await tieredEmptyL1(await redis(), budget)],
  },
  {
    name: 'stampede',
    run: async (budget) => [
      await stampede(
        [
          { where: 'memory', subjects: memorySubjects, server: undefined },
          { where: 'Redis', subjects: redisSubjects, server: await redis(), settleBound: 1.1 },
          { where: 'Memcached', subjects: memcachedSubjects, server: await memcached() },
          { where: 'tiered (memory, Redis)', subjects: tieredSubjects, server: await redis() },
        ],
        budget.repetitions,
      ),
    ],
  },
  { name: 'tagged-hit', run: async (budget) => taggedHit(await redis(), budget) },
  { name: 'defences', run: async (budget) => [await defences(await redis(), budget === QUICK)] },
  { name: 'stored-values', run: async (budget) => [await storedValues(await redis(), budget)] },
  { name: 'heap', run: (budget) => heap(budget.repetitions) },
  { name: 'curve-entries', run: (budget) => entriesCurve(budget) },
  { name: 'curve-keys', run: (budget) => keysCurve(budget) },
  { name: 'curve-in-flight', run: async (budget) => inFlightCurve(await redis(), budget) },
  { name: 'curve-value-size', run: async (budget) => valueSizeCurve(await redis(), await memcached(), budget) },
  { name: 'curve-stampede', run: async (budget) => stampedeCurve(await redis(), budget.repetitions) },
  // Last: once OpenTelemetry's context manager has been enabled, every later scenario measured
  // about 2.5× slower (floors included), though the scenario disables it again.
  { name: 'memory-hit-otel', run: async (budget) => [await memoryHitOtel(budget)] },
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function usage(): never {
  console.error(`usage: npm run bench [-- --quick] [${scenarios.map((s) => s.name).join(' | ')} ...]`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const filters = args.filter((arg) => arg !== '--quick');
  if (filters.some((filter) => filter.startsWith('-'))) usage();
  const chosen = filters.length === 0 ? scenarios : scenarios.filter((s) => filters.some((filter) => s.name.startsWith(filter)));
  if (chosen.length === 0) usage();
  const budget = quick ? QUICK : FULL;

  const started = performance.now();
  const sections: Section[] = [];
  for (const [index, scenario] of chosen.entries()) {
    const from = performance.now();
    // The run takes minutes: say where it is before each scenario starts.
    console.log(`\n[${index + 1}/${chosen.length}] ${scenario.name}, ${((from - started) / 1000).toFixed(0)} s into the run…`);
    for (const section of await scenario.run(budget)) {
      sections.push(section);
      console.log(`\n## ${section.title}\n`);
      console.table(section.rows.map((row) => Object.fromEntries(section.columns.map((column, i) => [column, row[i]]))));
    }
    console.log(`(${scenario.name}: ${((performance.now() - from) / 1000).toFixed(1)} s)`);
  }

  await Promise.all(Object.values(servers).map(async (server) => (await server)?.stop()));

  const complete = !quick && chosen.length === scenarios.length;
  const folder = complete ? join(root, 'docs') : join(root, 'build', 'bench');
  mkdirSync(folder, { recursive: true });
  const chart = sections.some((section) => section.bars.length > 0) ? 'benchmarks.svg' : undefined;
  if (chart !== undefined) writeFileSync(join(folder, chart), svgChart(sections));
  for (const section of sections)
    if (section.chart !== undefined) writeFileSync(join(folder, section.chart.file), section.chart.svg);
  const machine = {
    cores: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
    command: ['npm run bench', ...(args.length > 0 ? ['--', ...args] : [])].join(' '),
    servers: serverVersions(),
    timing: `${budget.rounds} timed rounds of ${budget.sliceMs} ms per subject`,
    seconds: (performance.now() - started) / 1000,
  };
  // What was written about the last complete run stays until someone edits it: a new run may make it stale.
  const published = join(root, 'docs', 'benchmarks.md');
  const analysis = existsSync(published) ? analysisOf(readFileSync(published, 'utf8')) : undefined;
  writeFileSync(join(folder, 'benchmarks.md'), markdownReport(machine, sections, chart, analysis));
  console.log(`\nwrote ${join(folder, 'benchmarks.md')} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  for (const t of sections.flatMap((section) => section.targets)) {
    console.log(`${t.holds ? 'holds ' : 'MISSED'}  ${t.target}: ${t.measured}`);
  }
}

function serverVersions(): string {
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return `${command} not found`;
    }
  };
  // `Redis server v=7.0.15 sha=… malloc=…`: the version is enough.
  const redis = version('redis-server', ['--version']).replace(/^Redis server v=(\S+).*$/, 'redis-server $1');
  return `${redis}; ${version('memcached', ['--version'])}`;
}

await main();
