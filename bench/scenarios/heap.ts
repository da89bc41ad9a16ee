import { interleave, median } from '../harness.js';
import type { Section } from '../report.js';
import { bentocacheWith, floor, hoardMethod, lruCacheWith, memoizee } from '../subjects/memory.js';
import { build, type SubjectFactory } from '../subjects/subject.js';
import { check, Computation, optionsFor } from '../workload.js';

const ENTRIES = 100_000;
const BOUND = 300;

const subjects: SubjectFactory[] = [floor, hoardMethod, lruCacheWith(ENTRIES), memoizee, bentocacheWith(ENTRIES)];

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the heap scenario needs `node --expose-gc` (npm run bench passes it)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap growth per entry after filling a fresh subject with ENTRIES entries through its lookup, after full GCs. */
async function bytesPerEntry(factory: SubjectFactory): Promise<number> {
  const before = collect();
  const subject = await build(factory, new Computation(), undefined);
  for (let id = 0; id < ENTRIES; id++) check(await subject.lookup(id, optionsFor(id)), id, subject.name);
  const after = collect();
  if (subject.computation.runs !== ENTRIES) throw new Error(`${subject.name} computed ${subject.computation.runs} times for ${ENTRIES} keys`);
  await subject.close();
  return (after - before) / ENTRIES;
}

export async function heap(rounds: number): Promise<Section> {
  const samples = await interleave(subjects, rounds, bytesPerEntry);
  const bytes = samples.map(median);
  const mapBytes = bytes[subjects.indexOf(floor)]!;
  const hoard = bytes[subjects.indexOf(hoardMethod)]!;
  return {
    title: 'Heap per entry at 100k entries',
    description:
      `V8 heap growth (after full GCs, \`node --expose-gc\`) divided by ${ENTRIES / 1000}k, after ${ENTRIES / 1000}k distinct ` +
      'calls of the workload through each subject; median of the rounds. It includes what every entry carries in every ' +
      'subject: its key string (about 30 characters) and its value (an object of three fields). Bounded caches are ' +
      `sized for ${ENTRIES / 1000}k entries. Map is the floor's Map memoization.`,
    columns: ['Subject', 'Bytes per entry', 'Over Map', 'Rounds'],
    rows: subjects.map((factory, i) => [
      factory.role === 'floor' ? 'Map (floor)' : factory.name,
      bytes[i]!.toFixed(0),
      factory.role === 'floor' ? '–' : `${bytes[i]! - mapBytes >= 0 ? '+' : ''}${(bytes[i]! - mapBytes).toFixed(0)}`,
      samples[i]!.map((b) => b.toFixed(0)).join(', '),
    ]),
    bars: [],
    targets: [{ target: `heap per entry at 100k, hoard MemoryBackend ≤ ${BOUND} B`, measured: `${hoard.toFixed(0)} B`, holds: hoard <= BOUND }],
  };
}
