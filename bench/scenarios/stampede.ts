import { median } from '../harness.js';
import type { Section, TargetResult } from '../report.js';
import { build, type Subject, type SubjectFactory } from '../subjects/subject.js';
import { check, Computation, optionsFor } from '../workload.js';

const CALLERS = 1000;
export const COMPUTE_MS = 20;

/** The subjects of one server (or of memory), and where they cache. */
export interface StampedeGroup {
  readonly where: string;
  readonly subjects: readonly SubjectFactory<unknown>[];
  readonly server: unknown;
  /** The most hoard's wall time may be, as a multiple of the computation's. */
  readonly settleBound?: number;
}

/** A key nobody has used: every repetition of every subject starts cold. */
let coldId = 5_000_000;

/** `callers` concurrent calls with the same arguments on a cold key: computations, and ms until every caller has its value. */
export async function settle(subject: Subject, callers: number): Promise<{ runs: number; ms: number }> {
  const id = coldId++;
  const before = subject.computation.runs;
  const start = performance.now();
  const values = await Promise.all(Array.from({ length: callers }, () => subject.lookup(id, optionsFor(id))));
  const ms = performance.now() - start;
  for (const value of values) check(value, id, subject.name);
  return { runs: subject.computation.runs - before, ms };
}

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
        const settled = await settle(subject, CALLERS);
        wallMs.push(settled.ms);
        runs.push(settled.runs);
      }
      await subject.close();
      rows.push([subject.name, group.where, runs.join(', '), `${median(wallMs).toFixed(1)} ms`]);
      if (factory.role === 'hoard' && group.settleBound !== undefined) {
        const settle = median(wallMs) / COMPUTE_MS;
        targets.push({
          target: `stampede on ${group.where}: ${subject.name} settles every caller within ${group.settleBound}× the computation time (issue 21)`,
          measured: `${settle.toFixed(2)}× (${median(wallMs).toFixed(1)} ms for ${COMPUTE_MS} ms)`,
          holds: settle <= group.settleBound,
        });
      }
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
