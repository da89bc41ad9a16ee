import { drive, interleave, type Budget, type Throughput } from '../harness.js';
import { target, type Section } from '../report.js';
import { memorySubjects } from '../subjects/memory.js';
import { build } from '../subjects/subject.js';
import { Computation } from '../workload.js';
import { prewarm, ratioOf, summarise, throughputSection, timeHits } from './throughput.js';

const SIGNATURE = 'An async method `(id: number, opts: { region: string })`, called with a fresh `opts` object each time';

export async function memoryHit(budget: Budget): Promise<Section> {
  const subjects = await Promise.all(memorySubjects.map((factory) => build(factory, new Computation(), undefined)));
  await prewarm(subjects);
  const measured = await timeHits(subjects, 1, budget);
  await Promise.all(subjects.map((subject) => subject.close()));
  const method = ratioOf(measured, 'hoard @Cached');
  const fn = ratioOf(measured, 'hoard cached(fn)');
  const overMemoizee = ratioOf(measured, 'hoard @Cached', 'memoizee');
  return throughputSection(
    'Memory hit, sequential',
    `${SIGNATURE}, awaited one call at a time over 1000 cached keys. Floor: \`Map.get(JSON.stringify([id, opts]))\` ` +
      'inside an async function. memoizee (promise mode) and p-memoize are given `JSON.stringify` keys, because their ' +
      'defaults key on object identity or on the first argument only; @type-cacheable runs over a Map client and its ' +
      'default key (md5 of the serialized arguments). fast-memoize keeps its defaults (`JSON.stringify` of all the ' +
      'arguments); async-cache-dedupe memoizes a function of one argument, given `[id, opts]` (safe-stable-stringify ' +
      'keys), over its memory storage. "hoard @Cached, key function" builds its key with a function on ' +
      'every call, where plain @Cached finds the key of arguments it has seen before without encoding them.',
    measured,
    [
      target('memory hit, hoard @Cached ≥ 0.8× floor', method, 0.8),
      target('memory hit, hoard cached(fn) ≥ 0.8× floor', fn, 0.8),
      target('memory hit, hoard @Cached ≥ 1.5× memoizee', overMemoizee, 1.5, `${overMemoizee.toFixed(2)}× memoizee`),
    ],
  );
}

/** The memoizers keyed by `JSON.stringify` that issue 21 measures a miss against. */
const JSON_MEMOIZERS = ['p-memoize', 'fast-memoize'];

/** Ids never used before in this process, so every call in the miss scenario is a miss. */
let freshId = 1_000_000;

export async function memoryMiss(budget: Budget): Promise<Section> {
  // A fresh cache per round keeps memory bounded: unbounded peers would otherwise grow for the
  // whole run. Nothing of a round's subject is kept past its round, so its cache is garbage then.
  const measure = async (factory: (typeof memorySubjects)[number]): Promise<{ throughput: Throughput; problem: string }> => {
    const subject = await build(factory, new Computation(), undefined);
    // Untimed first: some libraries set themselves up lazily during their first calls.
    await drive(subject.lookup, subject.name, () => freshId++, 1, budget.sliceMs / 4);
    const runsBefore = subject.computation.runs;
    const throughput = await drive(subject.lookup, subject.name, () => freshId++, 1, budget.sliceMs);
    await subject.close();
    const runs = subject.computation.runs - runsBefore;
    return { throughput, problem: runs === throughput.ops ? '' : `computed ${runs} times for ${throughput.ops} distinct calls` };
  };
  await interleave(memorySubjects, 1, measure);
  const rounds = await interleave(memorySubjects, budget.rounds, measure);
  const measured = rounds.map((samples, i) =>
    summarise(
      memorySubjects[i]!,
      samples.map((s) => s.throughput),
      samples.map((s) => s.problem).find((p) => p !== '') ?? '',
    ),
  );
  // Issue 21: against the faster of the JSON-keyed memoizers of the same run.
  const overFastest = (name: string): [number, string] => {
    const ratios = JSON_MEMOIZERS.map((peer) => [ratioOf(measured, name, peer), peer] as const);
    const [ratio, peer] = ratios.reduce((low, next) => (next[0] < low[0] ? next : low));
    return [ratio, `${ratio.toFixed(2)}× ${peer} (${ratios.map(([r, p]) => `${r.toFixed(2)}× ${p}`).join(', ')})`];
  };
  const [plain, plainText] = overFastest('hoard @Cached');
  const [keyed, keyedText] = overFastest('hoard @Cached, key function');
  return throughputSection(
    'Memory miss, sequential',
    `${SIGNATURE}, with an id never used before on every call: each call looks up, computes (a resolved promise) and ` +
      'stores. Every cache starts empty each round, is sized so that nothing is evicted, and is released when its ' +
      'round ends. Floor: the same hand-written Map memoization as for hits. "hoard @Cached, key function" is the ' +
      'same method with ' +
      '``key: (id, opts) => `${id}:${opts.region}` ``: the difference to plain @Cached is what the canonical encoding of ' +
      'the arguments costs on a miss, where no earlier call has left its key to find. Most of it is the look for ' +
      'symbol-keyed properties, one call into the engine per object argument ' +
      '([keys.md](keys.md#what-a-miss-costs)).',
    measured,
    [
      target('memory miss, hoard @Cached ≥ 0.9× the faster of p-memoize and fast-memoize (issue 21)', plain, 0.9, plainText),
      target(
        'memory miss, hoard @Cached with a key function ≥ 1.0× the faster of p-memoize and fast-memoize (issue 21)',
        keyed,
        1.0,
        keyedText,
      ),
    ],
  );
}
