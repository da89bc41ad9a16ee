import { drive, interleave, median, opsPerSecond, type Budget, type Throughput } from '../harness.js';
import { formatRate, formatRatio, type Section, type TargetResult } from '../report.js';
import type { Subject } from '../subjects/subject.js';
import { check, optionsFor } from '../workload.js';

/** A subject's figures in one throughput scenario. */
export interface Measured {
  readonly subject: Pick<Subject, 'name' | 'role'>;
  /** ops/s, one per round, in round order. */
  readonly samples: readonly number[];
  readonly opsPerSecond: number;
  /** Empty when the subject cached as it must; otherwise what went wrong (its figure is then void). */
  readonly problem: string;
}

/** Distinct keys cycled through while hits are timed. */
const HIT_KEYS = 1000;

/** Fills every subject with HIT_KEYS entries and checks that a second pass computes nothing. */
export async function prewarm(subjects: readonly Subject[]): Promise<void> {
  for (const subject of subjects) {
    for (let pass = 0; pass < 2; pass++) {
      for (let id = 0; id < HIT_KEYS; id++) check(await subject.lookup(id, optionsFor(id)), id, subject.name);
    }
  }
}

/**
 * Times hits: every subject (prewarmed) cycles through the HIT_KEYS entries with `inFlight`
 * callers, in interleaved rounds after one untimed round. A subject whose computation ran
 * while hits were timed did not really hit, and is reported as such.
 */
export async function timeHits(
  subjects: readonly Subject[],
  inFlight: number,
  budget: Budget,
  /** Runs before each of a subject's slices; what it returns runs after (process-wide set-up one subject needs). */
  around?: (subject: Subject) => () => void,
): Promise<Measured[]> {
  const runsBefore = subjects.map((subject) => subject.computation.runs);
  const measure = async (subject: Subject): Promise<Throughput> => {
    let next = 0;
    const after = around?.(subject);
    try {
      return await drive(
        subject.lookup,
        subject.name,
        () => (next = next + 1 === HIT_KEYS ? 0 : next + 1),
        inFlight,
        budget.sliceMs,
      );
    } finally {
      after?.();
    }
  };
  await interleave(subjects, 1, measure);
  const samples = await interleave(subjects, budget.rounds, measure);
  return subjects.map((subject, i) => {
    const recomputed = subject.computation.runs - runsBefore[i]!;
    return summarise(subject, samples[i]!, recomputed === 0 ? '' : `computed ${recomputed} times while hits were timed`);
  });
}

export function summarise(
  subject: Pick<Subject, 'name' | 'role'>,
  throughputs: readonly Throughput[],
  problem: string,
): Measured {
  const samples = throughputs.map(opsPerSecond);
  return { subject, samples, opsPerSecond: median(samples), problem };
}

function floorOf(measured: readonly Measured[]): Measured {
  const floor = measured.find((m) => m.subject.role === 'floor');
  if (floor === undefined) throw new Error('a throughput scenario needs a floor subject');
  return floor;
}

/**
 * `measured` relative to `to`: the median of its per-round ratios, each against `to`'s sample
 * of the same round, so that load from outside the run (it slows whole stretches of rounds)
 * cancels out. 0 when either figure is void, so no target holds on it.
 */
function relative(measured: Measured, to: Measured): number {
  if (measured.problem !== '' || to.problem !== '') return 0;
  return median(measured.samples.map((sample, round) => sample / to.samples[round]!));
}

function named(measured: readonly Measured[], name: string): Measured {
  const subject = measured.find((m) => m.subject.name === name);
  if (subject === undefined) throw new Error(`no subject named ${name}`);
  return subject;
}

/** How fast `name` is relative to `to` (default: the floor). */
export function ratioOf(measured: readonly Measured[], name: string, to?: string): number {
  return relative(named(measured, name), to === undefined ? floorOf(measured) : named(measured, to));
}

export function throughputSection(
  title: string,
  description: string,
  measured: readonly Measured[],
  targets: TargetResult[],
): Section {
  const floor = floorOf(measured);
  const checkText = (m: Measured) => (m.problem === '' ? 'ok' : `**${m.problem}**`);
  return {
    title,
    description,
    columns: ['Subject', 'Median ops/s', 'Ratio to floor', 'Rounds (min–max ops/s)', 'Check'],
    rows: measured.map((m) => [
      m.subject.name,
      formatRate(m.opsPerSecond),
      m.problem === '' ? formatRatio(relative(m, floor)) : '–',
      `${formatRate(Math.min(...m.samples))} – ${formatRate(Math.max(...m.samples))}`,
      checkText(m),
    ]),
    bars: measured
      .filter((m) => m.problem === '')
      .map((m) => ({ label: m.subject.name, ratio: relative(m, floor), role: m.subject.role })),
    targets,
  };
}
