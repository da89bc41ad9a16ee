import type { RedisServer } from '../../spec/support/servers.js';
import type { Budget } from '../harness.js';
import { target, type Section } from '../report.js';
import { floor as redisFloor, hoard as redisHoard } from '../subjects/redis.js';
import { build, type SubjectFactory } from '../subjects/subject.js';
import { hoardEmptyL1, tieredSubjects } from '../subjects/tiered.js';
import { Computation } from '../workload.js';
import { prewarm, ratioOf, throughputSection, timeHits } from './throughput.js';

/** Issue 21: a tiered L1 hit against the memory floor. */
const L1_HIT_BOUND = 1.2;
/** Issue 21: tiered reads that reach Redis, 256 in flight, against RedisBackend's hits. */
const EMPTY_L1_BOUND = 0.9;
const EMPTY_L1_IN_FLIGHT = 256;

async function built(factories: readonly SubjectFactory<RedisServer>[], server: RedisServer) {
  const subjects = [];
  for (const factory of factories) subjects.push(await build(factory, new Computation(), server));
  await prewarm(subjects);
  return subjects;
}

/** Hits served by the memory tier of a two-tier cache (memory in front of Redis, with an invalidation bus). */
export async function tieredHit(server: RedisServer, budget: Budget): Promise<Section> {
  const subjects = await built(tieredSubjects, server);
  const measured = await timeHits(subjects, 1, budget);
  await Promise.all(subjects.map((subject) => subject.close()));
  const ratio = ratioOf(measured, 'hoard @Cached + TieredBackend');
  return throughputSection(
    'Tiered hit, sequential',
    'The memory-hit workload on two-tier caches: memory in front of the local redis-server, with an invalidation ' +
      'bus where the library has one (hoard: TieredBackend over a MemoryBackend and a RedisBackend, with a RedisBus; ' +
      'bentocache: its Redis bus). The prewarm wrote every entry through both tiers, and the memory tiers keep them ' +
      'longer than the run (hoard: `l1Ttl` 300 s), so the timed calls are memory-tier hits. hoard checks each hit ' +
      'against its method\'s generation record, whose copy is in L1 too. "peek hidden" is the same backend with its ' +
      "`peek` (the synchronous read of L1 copies) taken away, so hits go through `lookup`'s promises: the A/B of that " +
      'path, when the call path reads `peek`. Floor: the memory floor ' +
      '(`Map.get(JSON.stringify([id, opts]))`).',
    measured,
    [target(`tiered L1 hit, hoard @Cached + TieredBackend ≥ ${L1_HIT_BOUND}× the memory floor (issue 21)`, ratio, L1_HIT_BOUND)],
  );
}

/** Tiered lookups that all reach Redis, many in flight, next to RedisBackend's own hits. */
export async function tieredEmptyL1(server: RedisServer, budget: Budget): Promise<Section> {
  const subjects = await built([redisFloor, redisHoard, hoardEmptyL1], server);
  const measured = await timeHits(subjects, EMPTY_L1_IN_FLIGHT, budget);
  await Promise.all(subjects.map((subject) => subject.close()));
  const ratio = ratioOf(measured, hoardEmptyL1.name, redisHoard.name);
  return throughputSection(
    `Tiered hit from Redis, ${EMPTY_L1_IN_FLIGHT} in flight`,
    `${EMPTY_L1_IN_FLIGHT} callers over 1000 keys, as in "Redis hit, 256 in flight", on a TieredBackend whose L1 holds one ` +
      "entry: each call's entry and its method's generation record were pushed out of L1 by the calls before, so " +
      'every call reads both from Redis, and copies them into L1 (pushing out the one before). The lookups of a tick ' +
      'reach Redis as one script (MGET and each PTTL). Next to it, RedisBackend alone (an MGET of the same keys per ' +
      'tick); floor: the auto-pipelined ioredis GET.',
    measured,
    [
      target(
        `tiered hit from Redis, ${EMPTY_L1_IN_FLIGHT} in flight: hoard @Cached + TieredBackend ≥ ${EMPTY_L1_BOUND}× hoard @Cached + RedisBackend (issue 21)`,
        ratio,
        EMPTY_L1_BOUND,
        `${ratio.toFixed(2)}× RedisBackend`,
      ),
    ],
  );
}
