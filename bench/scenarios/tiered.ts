import type { RedisServer } from '../../spec/support/servers.js';
import type { Budget } from '../harness.js';
import type { Section } from '../report.js';
import { build } from '../subjects/subject.js';
import { tieredSubjects } from '../subjects/tiered.js';
import { Computation } from '../workload.js';
import { prewarm, throughputSection, timeHits } from './throughput.js';

/** Hits served by the memory tier of a two-tier cache (memory in front of Redis, with an invalidation bus). */
export async function tieredHit(server: RedisServer, budget: Budget): Promise<Section> {
  const subjects = [];
  for (const factory of tieredSubjects) subjects.push(await build(factory, new Computation(), server));
  await prewarm(subjects);
  const measured = await timeHits(subjects, 1, budget);
  await Promise.all(subjects.map((subject) => subject.close()));
  return throughputSection(
    'Tiered hit, sequential',
    'The memory-hit workload on two-tier caches: memory in front of the local redis-server, with an invalidation ' +
      'bus where the library has one (hoard: TieredBackend over a MemoryBackend and a RedisBackend, with a RedisBus; ' +
      'bentocache: its Redis bus). The prewarm wrote every entry through both tiers, and the memory tiers keep them ' +
      'longer than the run (hoard: `l1Ttl` 60 s), so the timed calls are memory-tier hits. Floor: the memory floor ' +
      '(`Map.get(JSON.stringify([id, opts]))`). No target in issue 6.',
    measured,
    [],
  );
}
