import { median } from '../harness.js';
import type { Section, TargetResult } from '../report.js';
import { build, type SubjectFactory } from '../subjects/subject.js';
import { check, Computation, optionsFor } from '../workload.js';

const CALLERS = 1000;
const COMPUTE_MS = 20;

/** The subjects of one server (or of memory), and where they cache. */
export interface StampedeGroup {
  readonly where: string;
  readonly subjects: readonly SubjectFactory<unknown>[];
  readonly server: unknown;
}

/** A key nobody has used: every repetition of every subject starts cold. */
let coldId = 5_000_000;

/**
 * 1000 concurrent calls with the same arguments on a cold key, the computation taking 20 ms:
 * how many times each subject computes, and how long until every caller has its value.
 */
export async function stampede(groups: readonly StampedeGroup[], repetitions: number): Promise<Section> {
  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  for (const group of groups) {
    for (const factory of group.subjects) {
      const computation = new Computation(COMPUTE_MS);
      const subject = await build(factory, computation, group.server);
      const runs: number[] = [];
      const wallMs: number[] = [];
      for (let repetition = 0; repetition < repetitions; repetition++) {
        const id = coldId++;
        const before = computation.runs;
        const start = performance.now();
        const values = await Promise.all(Array.from({ length: CALLERS }, () => subject.lookup(id, optionsFor(id))));
        wallMs.push(performance.now() - start);
        runs.push(computation.runs - before);
        for (const value of values) check(value, id, subject.name);
      }
      await subject.close();
      rows.push([subject.name, group.where, runs.join(', '), `${median(wallMs).toFixed(0)} ms`]);
      if (factory.role === 'hoard') {
        targets.push({
          target: `stampede on ${group.where}: ${subject.name} computes exactly once`,
          measured: runs.join(', '),
          holds: runs.every((count) => count === 1),
        });
      }
    }
  }
  return {
    title: 'Stampede',
    description:
      `${CALLERS} concurrent calls with the same arguments on a cold key; the computation takes ${COMPUTE_MS} ms. ` +
      `Computations are counted per repetition (${repetitions} repetitions, each on a new key); wall time is until every ` +
      'caller has its value (median). One computation means the library merged the calls (single flight).',
    columns: ['Subject', 'Cache', 'Computations per 1000 calls', 'Wall time'],
    rows,
    bars: [],
    targets,
  };
}
