import type { Budget } from '../harness.js';
import { target, type Section } from '../report.js';
import { build, type SubjectFactory } from '../subjects/subject.js';
import { Computation } from '../workload.js';
import { prewarm, ratioOf, throughputSection, timeHits } from './throughput.js';

/** Callers in flight: one at a time (latency-bound), and many (throughput-bound, pipelining). */
const IN_FLIGHT = [1, 256] as const;

export interface RemoteHit<Server> {
  readonly server: string;
  readonly subjects: readonly SubjectFactory<Server>[];
  readonly description: string;
  /** The subject the targets are about, and the ratio each in-flight level must reach. */
  readonly hoard: string;
  readonly bounds: Readonly<Partial<Record<(typeof IN_FLIGHT)[number], number>>>;
  /** The ratio to the slowest-beaten peer (the lowest ratio over every peer) each in-flight level must reach. */
  readonly peerBounds?: Readonly<Partial<Record<(typeof IN_FLIGHT)[number], number>>>;
  /** The issue a bound comes from, named in its target. */
  readonly issue?: string;
}

/** Hits on a remote server, 1 and 256 in flight: one section each, subjects built and filled once. */
export async function remoteHit<Server>(scenario: RemoteHit<Server>, server: Server, budget: Budget): Promise<Section[]> {
  const subjects = [];
  for (const factory of scenario.subjects) subjects.push(await build(factory, new Computation(), server));
  await prewarm(subjects);
  const sections: Section[] = [];
  for (const inFlight of IN_FLIGHT) {
    const measured = await timeHits(subjects, inFlight, budget);
    const ratio = ratioOf(measured, scenario.hoard);
    const bound = scenario.bounds[inFlight];
    const load =
      inFlight === 1
        ? 'One call at a time: round-trip latency.'
        : `${inFlight} callers, each awaiting its call before the next, over 1000 keys (so concurrent calls have ` +
          'distinct keys and no single flight can merge them).';
    const title = `${scenario.server} hit, ${inFlight} in flight`;
    const from = scenario.issue === undefined ? '' : ` (${scenario.issue})`;
    const targets = bound === undefined ? [] : [target(`${title}: ${scenario.hoard} ≥ ${bound}× floor${from}`, ratio, bound)];
    const peerBound = scenario.peerBounds?.[inFlight];
    if (peerBound !== undefined) {
      const [lowest, peer] = measured
        .filter((m) => m.subject.role === 'peer')
        .map((m) => [ratioOf(measured, scenario.hoard, m.subject.name), m.subject.name] as const)
        .reduce((low, next) => (next[0] < low[0] ? next : low));
      targets.push(
        target(
          `${title}: ${scenario.hoard} ≥ ${peerBound}× every peer${from}`,
          lowest,
          peerBound,
          `${lowest.toFixed(2)}× ${peer} (the closest)`,
        ),
      );
    }
    sections.push(throughputSection(title, `${scenario.description} ${load}`, measured, targets));
  }
  await Promise.all(subjects.map((subject) => subject.close()));
  return sections;
}
