import { MemcachedBackend, RedisBackend } from 'hoard';
import { Redis } from 'ioredis';
import memjs from 'memjs';
import stringify from 'safe-stable-stringify';
import { encodeArguments } from '#src/keys/encode.js';
import type { ManagedServer, RedisServer } from '../../spec/support/servers.js';
import { svgLineChart, type Axis, type Series } from '../chart.js';
import { interleave, median, type Budget } from '../harness.js';
import { formatRate, type Section } from '../report.js';
import { cachedMethod, registerBackend, TTL_SECONDS, REMOTE_TIMEOUT } from '../subjects/hoard.js';
import { asyncCacheDedupe, cacheManager, floor as redisFloor, hoard as redisHoard } from '../subjects/redis.js';
import { build, jsonKey, memoizeRemote, type Subject, type SubjectFactory } from '../subjects/subject.js';
import { check, Computation, optionsFor, type Options, type Value } from '../workload.js';
import { collect, count, storeBytesPerEntry, stores, type Store } from './heap.js';
import { COMPUTE_MS, settle } from './stampede.js';
import { prewarm, timeHits } from './throughput.js';

/** What a curve section is built from: its rows and one series per subject. */
interface Curve {
  readonly title: string;
  readonly description: string;
  readonly file: string;
  readonly command: string;
  readonly x: Axis & { readonly ticks: readonly number[] };
  readonly y: Axis;
  readonly series: readonly Series[];
  /** Table columns after the subject's name: one per x, or more when a point carries more than its y. */
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

function curveSection(curve: Curve): Section {
  const svg = svgLineChart({ title: curve.title, x: curve.x, y: curve.y, xTicks: curve.x.ticks, series: curve.series });
  return {
    title: curve.title,
    description: curve.description,
    columns: curve.columns,
    rows: curve.rows,
    bars: [],
    targets: [],
    chart: { file: curve.file, svg },
    command: curve.command,
  };
}

const plain = (value: number): string => String(value);
const bytesText = (bytes: number): string =>
  bytes >= 1e6 ? `${bytes / 1e6} MB` : bytes >= 1e3 ? `${bytes / 1e3} KB` : `${bytes} B`;
const rate = (value: number): string => formatRate(value);

/** A reading of `performance.now()` per call would cost as much as a Map hit: time a batch of them. */
function timeSync(work: () => void, sliceMs: number): number {
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < sliceMs) {
    work();
    ops++;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

// ---- hit ops/s and bytes per entry vs entries ---------------------------------------------

const ENTRY_COUNTS = [10_000, 100_000, 1_000_000];
/** Keys read per timed batch: the stride walks the store in an order unrelated to insertion. */
const BATCH = 4096;
const STRIDE = 7919;

export async function entriesCurve(budget: Budget): Promise<Section[]> {
  const hits: number[][] = stores.map(() => []);
  const bytes: number[][] = stores.map(() => []);
  for (const entries of ENTRY_COUNTS) {
    const keys = Array.from({ length: entries }, (_, id) => `Reports.lookup:${jsonKey(id, optionsFor(id))}`);
    const values: Value[] = keys.map((_, id) => ({ id, region: optionsFor(id).region, total: id * 2 }));
    const filled: Store[] = [];
    stores.forEach((subject, i) => {
      bytes[i]!.push(storeBytesPerEntry(subject, keys, values));
      const store = subject.create(entries);
      for (let k = 0; k < entries; k++) store.set(keys[k]!, values[k]!);
      filled.push(store);
    });
    let cursor = 0;
    const samples = await interleave(filled, budget.rounds, async (store) => {
      const perBatch = timeSync(() => {
        for (let n = 0; n < BATCH; n++) {
          cursor = (cursor + STRIDE) % entries;
          if (store.get(keys[cursor]!) === undefined) throw new Error(`a store lost key ${cursor}`);
        }
      }, budget.sliceMs / 2);
      return perBatch * BATCH;
    });
    samples.forEach((rounds, i) => hits[i]!.push(median(rounds)));
    filled.length = 0;
    collect();
  }
  const role = (name: string) => (name === 'Map' ? 'floor' : name.startsWith('hoard') ? 'hoard' : 'peer') as Series['role'];
  const x = { label: 'entries held', log: true, format: count, ticks: ENTRY_COUNTS };
  /** A curve per store and a row per store of `figures[store][size]`. */
  const perStore = (figures: readonly (readonly number[])[], unit: string, format: (figure: number) => string) => ({
    series: stores.map((subject, i) => ({
      label: subject.name,
      role: role(subject.name),
      points: ENTRY_COUNTS.map((n, k) => [n, figures[i]![k]!] as const),
    })),
    columns: ['Store', ...ENTRY_COUNTS.map((n) => `${unit} at ${count(n)}`)],
    rows: stores.map((subject, i) => [subject.name, ...figures[i]!.map(format)]),
  });
  const what =
    `Each store is filled with ${ENTRY_COUNTS.map(count).join(', ')} of the workload's keys (about 40 characters) and values ` +
    '(objects of three fields), bounded stores sized for them with a TTL. ';
  return [
    curveSection({
      title: 'Hit throughput vs entries held',
      description:
        what +
        `Hits: \`get\` of keys taken ${STRIDE} apart (so neighbours in time are not neighbours in memory), in batches of ` +
        `${BATCH}, synchronously, ${budget.rounds} interleaved rounds of ${budget.sliceMs / 2} ms; median. A Map \`get\` ` +
        'is the floor; lru-cache and hoard also check the expiry and move the entry to the front of their recency list.',
      file: 'bench-entries-hits.svg',
      command: 'npm run bench -- curve-entries',
      x,
      y: { label: 'hits per second', log: false, format: rate },
      ...perStore(hits, 'hits/s', rate),
    }),
    curveSection({
      title: 'Bytes per entry vs entries held',
      description:
        what +
        "Bytes: the store's own growth (V8 heap plus ArrayBuffers after full GCs) divided by the entries, the keys and values " +
        'existing before and after it, as in "Memory per entry over a bare Map". One round per size.',
      file: 'bench-entries-bytes.svg',
      command: 'npm run bench -- curve-entries',
      x,
      y: { label: 'bytes per entry', log: false, format: plain },
      ...perStore(bytes, 'bytes/entry', (b) => b.toFixed(1)),
    }),
  ];
}

// ---- key building vs argument size --------------------------------------------------------

const ARGUMENT_SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000];

/** A plain object whose JSON is about `bytes` long: records of a few fields, or one short string. */
function argumentOf(bytes: number): unknown {
  if (bytes < 60) return { q: 'x'.repeat(Math.max(1, bytes - 8)) };
  const record = (i: number) => ({ id: i, name: `user ${i}`, email: `user${i}@example.com`, active: i % 3 === 0 });
  const each = JSON.stringify(record(10_000)).length + 1;
  return { rows: Array.from({ length: Math.max(1, Math.round((bytes - 10) / each)) }, (_, i) => record(10_000 + i)) };
}

const KEY_BUILDERS: { label: string; role: Series['role']; build: (argument: unknown) => string }[] = [
  { label: "hoard's canonical encoding", role: 'hoard', build: (argument) => encodeArguments([argument], 'Bench.method') },
  { label: 'JSON.stringify', role: 'floor', build: (argument) => JSON.stringify([argument]) },
  { label: 'safe-stable-stringify', role: 'peer', build: (argument) => stringify([argument]) ?? '' },
];

export async function keysCurve(budget: Budget): Promise<Section[]> {
  const micros: number[][] = KEY_BUILDERS.map(() => []);
  const actual: number[] = [];
  for (const size of ARGUMENT_SIZES) {
    const argument = argumentOf(size);
    actual.push(JSON.stringify(argument).length);
    const samples = await interleave(
      KEY_BUILDERS,
      budget.rounds,
      async (builder) => 1e6 / timeSync(() => builder.build(argument), budget.sliceMs / 4),
    );
    samples.forEach((rounds, i) => micros[i]!.push(median(rounds)));
  }
  const µs = (value: number) => (value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3));
  return [
    curveSection({
      title: 'Key building time vs argument size',
      description:
        'Time to turn one argument into a key, for plain objects whose JSON is about 10 B to 1 MB (records of four fields; ' +
        `actual JSON sizes: ${actual.map((n) => n.toLocaleString('en')).join(', ')} bytes). hoard's canonical encoding is what ` +
        '`@Cached` builds a key with on a miss (sorted keys, type tags, the checks that make it injective); ' +
        '`JSON.stringify` is neither order-independent nor injective; safe-stable-stringify sorts keys (async-cache-dedupe ' +
        `keys with it). ${budget.rounds} interleaved rounds of ${budget.sliceMs / 4} ms per size; median µs per key.`,
      file: 'bench-keys.svg',
      command: 'npm run bench -- curve-keys',
      x: { label: 'argument size (JSON)', log: true, format: bytesText, ticks: ARGUMENT_SIZES },
      y: { label: 'µs per key', log: true, format: (v) => (v >= 1 ? String(v) : v.toPrecision(1)) },
      series: KEY_BUILDERS.map((builder, i) => ({
        label: builder.label,
        role: builder.role,
        points: ARGUMENT_SIZES.map((n, k) => [n, micros[i]![k]!] as const),
      })),
      columns: ['Key builder', ...ARGUMENT_SIZES.map((n) => `µs at ${bytesText(n)}`)],
      rows: KEY_BUILDERS.map((builder, i) => [builder.label, ...micros[i]!.map(µs)]),
    }),
  ];
}

// ---- Redis hit throughput vs calls in flight -------------------------------------------------

const IN_FLIGHT = [1, 4, 16, 64, 256, 1024];
const IN_FLIGHT_SUBJECTS = [redisFloor, redisHoard, asyncCacheDedupe, cacheManager];

export async function inFlightCurve(server: RedisServer, budget: Budget): Promise<Section[]> {
  const subjects: Subject[] = [];
  for (const factory of IN_FLIGHT_SUBJECTS) subjects.push(await build(factory, new Computation(), server));
  await prewarm(subjects);
  const rates: number[][] = subjects.map(() => []);
  // Fewer rounds per level than the main scenarios: six levels of four subjects.
  const levelBudget = { ...budget, rounds: Math.max(3, Math.round(budget.rounds / 3)) };
  for (const inFlight of IN_FLIGHT) {
    const measured = await timeHits(subjects, inFlight, levelBudget);
    measured.forEach((m, i) => rates[i]!.push(m.problem === '' ? m.opsPerSecond : NaN));
  }
  await Promise.all(subjects.map((subject) => subject.close()));
  return [
    curveSection({
      title: 'Redis hit throughput vs calls in flight',
      description:
        'The Redis-hit workload (1000 cached keys) with 1 to 1024 callers, each awaiting its call before the next. ' +
        `${levelBudget.rounds} interleaved rounds of ${budget.sliceMs} ms per level; median ops/s. Floor: the ` +
        'auto-pipelined ioredis GET, JSON-parsed.',
      file: 'bench-redis-in-flight.svg',
      command: 'npm run bench -- curve-in-flight',
      x: { label: 'calls in flight', log: true, format: plain, ticks: IN_FLIGHT },
      y: { label: 'hits per second', log: true, format: rate },
      series: IN_FLIGHT_SUBJECTS.map((factory, i) => ({
        label: factory.name,
        role: factory.role,
        points: IN_FLIGHT.map((n, k) => [n, rates[i]![k]!] as const),
      })),
      columns: ['Subject', ...IN_FLIGHT.map((n) => `ops/s, ${n} in flight`)],
      rows: IN_FLIGHT_SUBJECTS.map((factory, i) => [
        factory.name,
        ...rates[i]!.map((r) => (Number.isNaN(r) ? 'failed its check' : rate(r))),
      ]),
    }),
  ];
}

// ---- value size on Redis and Memcached hits ---------------------------------------------

/**
 * 1 MB is 10^6 bytes of JSON: under memcached's default item limit of 1 MiB with hoard's
 * framing, which 2^20 bytes would not be.
 */
const VALUE_SIZES = [1_000, 100_000, 1_000_000];
/** Few keys: a 1 MB value per key, and every subject holds them all. */
const VALUE_KEYS = 8;

/** The workload's value with `rows` beside its fields, so that its JSON is `bytes` long or a little more. */
class SizedComputation extends Computation {
  private readonly rows: unknown;
  constructor(bytes: number) {
    super();
    this.rows = (argumentOf(bytes) as { rows: unknown }).rows;
  }
  override result(id: number, opts: Options): Value {
    this.runs++;
    return { id, region: opts.region, total: id * 2, rows: this.rows } as Value;
  }
}

interface SizedSubject {
  readonly label: string;
  readonly role: Series['role'];
  readonly server: 'Redis' | 'Memcached';
  create(
    computation: Computation,
  ): Promise<{ lookup: (id: number, opts: Options) => Promise<Value>; close: () => Promise<void> }>;
}

function sizedSubjects(redis: RedisServer, memcached: ManagedServer): SizedSubject[] {
  let prefixes = 0;
  const prefix = () => `sized${++prefixes}:`;
  return [
    {
      label: 'Redis: ioredis GET + JSON.parse',
      role: 'floor',
      server: 'Redis',
      async create(computation) {
        const client = new Redis({ host: redis.host, port: redis.port, enableAutoPipelining: true });
        const lookup = memoizeRemote(
          (key) => client.get(key),
          (key, text) => client.set(key, text, 'EX', TTL_SECONDS),
          computation,
          prefix(),
        );
        return { lookup, close: async () => client.disconnect() };
      },
    },
    {
      label: 'Redis: hoard @Cached + RedisBackend',
      role: 'hoard',
      server: 'Redis',
      async create(computation) {
        const backend = new RedisBackend({ url: redis.url, prefix: prefix(), timeout: REMOTE_TIMEOUT });
        return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
      },
    },
    {
      label: 'Memcached: memjs GET + JSON.parse',
      role: 'floor',
      server: 'Memcached',
      async create(computation) {
        const client = memjs.Client.create(memcached.address);
        const get = (key: string) =>
          new Promise<Buffer | null>((resolve, reject) =>
            client.get(key, (error, value) => (error ? reject(error) : resolve(value))),
          );
        const lookup = memoizeRemote(get, (key, text) => client.set(key, text, { expires: TTL_SECONDS }), computation, prefix());
        return { lookup, close: async () => client.quit() };
      },
    },
    {
      label: 'Memcached: hoard @Cached + MemcachedBackend',
      role: 'hoard',
      server: 'Memcached',
      async create(computation) {
        const backend = new MemcachedBackend({ servers: [memcached.address], prefix: prefix(), timeout: REMOTE_TIMEOUT });
        return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
      },
    },
  ];
}

export async function valueSizeCurve(redis: RedisServer, memcached: ManagedServer, budget: Budget): Promise<Section[]> {
  const subjects = sizedSubjects(redis, memcached);
  const rates: number[][] = subjects.map(() => []);
  for (const bytes of VALUE_SIZES) {
    const built = [];
    for (const subject of subjects) {
      const computation = new SizedComputation(bytes);
      const made = await subject.create(computation);
      for (let pass = 0; pass < 2; pass++)
        for (let id = 0; id < VALUE_KEYS; id++) check(await made.lookup(id, optionsFor(id)), id, subject.label);
      if (computation.runs !== VALUE_KEYS)
        throw new Error(`${subject.label} computed ${computation.runs} times for ${VALUE_KEYS} keys at ${bytes} bytes`);
      built.push({ ...made, computation, label: subject.label });
    }
    const samples = await interleave(built, Math.max(3, Math.round(budget.rounds / 3)), async (subject) => {
      let ops = 0;
      const start = performance.now();
      // One call at a time, at least a few per slice even when each takes milliseconds.
      while (performance.now() - start < budget.sliceMs || ops < 3) {
        const id = ops % VALUE_KEYS;
        check(await subject.lookup(id, optionsFor(id)), id, subject.label);
        ops++;
      }
      return (ops * 1000) / (performance.now() - start);
    });
    built.forEach((subject, i) => {
      if (subject.computation.runs !== VALUE_KEYS) throw new Error(`${subject.label} computed while hits were timed`);
      rates[i]!.push(median(samples[i]!));
    });
    await Promise.all(built.map((subject) => subject.close()));
  }
  return [
    curveSection({
      title: 'Hit throughput vs value size, Redis and Memcached',
      description:
        `One call at a time over ${VALUE_KEYS} keys whose values are JSON of 1 KB, 100 KB and 1 MB (10^6 bytes, so that it fits ` +
        "memcached's default 1 MiB item with hoard's framing): the workload's value with records beside its fields. Floors: " +
        'the raw clients, a GET and `JSON.parse`. hoard uses its default serializer (no compression). ' +
        `${Math.max(3, Math.round(budget.rounds / 3))} interleaved rounds of ${budget.sliceMs} ms per size; median hits/s.`,
      file: 'bench-value-size.svg',
      command: 'npm run bench -- curve-value-size',
      x: { label: 'value size (JSON)', log: true, format: bytesText, ticks: VALUE_SIZES },
      y: { label: 'hits per second', log: true, format: rate },
      series: subjects.map((subject, i) => ({
        label: subject.label,
        role: subject.role === 'floor' ? (subject.server === 'Redis' ? 'floor' : 'peer') : 'hoard',
        points: VALUE_SIZES.map((n, k) => [n, rates[i]![k]!] as const),
      })),
      columns: ['Subject', ...VALUE_SIZES.map((n) => `hits/s at ${bytesText(n)}`)],
      rows: subjects.map((subject, i) => [subject.label, ...rates[i]!.map(rate)]),
    }),
  ];
}

// ---- stampede settle time vs callers --------------------------------------------------------

const CALLERS = [10, 100, 1_000, 10_000];
const STAMPEDE_SUBJECTS: SubjectFactory<RedisServer>[] = [redisHoard, asyncCacheDedupe, cacheManager];

export async function stampedeCurve(server: RedisServer, repetitions: number): Promise<Section[]> {
  const wall: number[][] = STAMPEDE_SUBJECTS.map(() => []);
  const runs: string[][] = STAMPEDE_SUBJECTS.map(() => []);
  for (const [i, factory] of STAMPEDE_SUBJECTS.entries()) {
    const subject = await build(factory, new Computation(COMPUTE_MS), server);
    for (const callers of CALLERS) {
      const settled = [];
      for (let repetition = 0; repetition < repetitions; repetition++) settled.push(await settle(subject, callers));
      wall[i]!.push(median(settled.map((s) => s.ms)));
      runs[i]!.push(settled.map((s) => s.runs).join('/'));
    }
    await subject.close();
  }
  return [
    curveSection({
      title: 'Stampede settle time vs callers, Redis',
      description:
        `10 to 10,000 concurrent calls with the same arguments on a cold key in Redis; the computation takes ${COMPUTE_MS} ms. ` +
        `Wall time until every caller has its value, median of ${repetitions} repetitions (each on a new key); the ` +
        `computations of each repetition in brackets. ${COMPUTE_MS} ms is the least possible.`,
      file: 'bench-stampede.svg',
      command: 'npm run bench -- curve-stampede',
      x: { label: 'concurrent callers', log: true, format: (n) => n.toLocaleString('en'), ticks: CALLERS },
      y: { label: 'ms until every caller settled', log: false, format: plain },
      series: STAMPEDE_SUBJECTS.map((factory, i) => ({
        label: factory.name,
        role: factory.role,
        points: CALLERS.map((n, k) => [n, wall[i]![k]!] as const),
      })),
      columns: ['Subject', ...CALLERS.map((n) => `${n.toLocaleString('en')} callers`)],
      rows: STAMPEDE_SUBJECTS.map((factory, i) => [
        factory.name,
        ...wall[i]!.map((ms, k) => `${ms.toFixed(1)} ms (${runs[i]![k]})`),
      ]),
    }),
  ];
}
