import { Cached, MemoryBackend, RedisBackend, type CacheBackend } from 'hoard';
import type { RedisServer } from '../../spec/support/servers.js';
import type { Budget } from '../harness.js';
import type { Section } from '../report.js';
import { TTL_SECONDS, registerBackend } from '../subjects/hoard.js';
import { floor as memoryFloor } from '../subjects/memory.js';
import { redisSubjects } from '../subjects/redis.js';
import { build, type SubjectFactory } from '../subjects/subject.js';
import { Computation, type Computation as Work, type Lookup, type Options, type Value } from '../workload.js';
import { prewarm, ratioOf, throughputSection, timeHits } from './throughput.js';

/** How entries are tagged: not at all, with one fixed tag, or with two tags a function derives from the arguments. */
type Tagging = 'none' | 'fixed' | 'function';

const TAGGING: Record<Tagging, string> = { none: 'untagged', fixed: '1 fixed tag', function: '2 tags from a function' };

function taggedMethod(backend: string, computation: Work, tagging: Tagging): Lookup {
  const tags =
    tagging === 'none'
      ? undefined
      : tagging === 'fixed'
        ? ['reports']
        : (id: number, opts: Options) => [`report:${id}`, `region:${opts.region}`];
  class Reports {
    @Cached({ backend, ttl: TTL_SECONDS, tags })
    async lookup(id: number, opts: Options): Promise<Value> {
      return computation.result(id, opts);
    }
  }
  const reports = new Reports();
  return (id, opts) => reports.lookup(id, opts);
}

function hoardSubjects<Server>(
  where: string,
  backendOf: (server: Server, tagging: Tagging) => CacheBackend,
): SubjectFactory<Server>[] {
  return (Object.keys(TAGGING) as Tagging[]).map((tagging) => ({
    name: `hoard @Cached + ${where}, ${TAGGING[tagging]}`,
    role: 'hoard',
    async create(computation: Work, server: Server) {
      const backend = backendOf(server, tagging);
      return { lookup: taggedMethod(registerBackend(backend), computation, tagging), close: async () => backend.close() };
    },
  }));
}

async function measure<Server>(
  title: string,
  description: string,
  factories: SubjectFactory<Server>[],
  server: Server,
  budget: Budget,
): Promise<Section> {
  const subjects = [];
  for (const factory of factories) subjects.push(await build(factory, new Computation(), server));
  await prewarm(subjects);
  const measured = await timeHits(subjects, 1, budget);
  await Promise.all(subjects.map((subject) => subject.close()));
  const [untagged, ...tagged] = factories.slice(1).map((factory) => factory.name) as [string, ...string[]];
  // Not targets: what a tag costs on a hit, as a ratio to the untagged method in the same run.
  const costs = tagged.map((name) => {
    const ratio = ratioOf(measured, name, untagged);
    return { target: `${name} relative to untagged`, measured: `${ratio.toFixed(2)}×`, holds: true };
  });
  return throughputSection(title, description, measured, costs);
}

/**
 * What reading a tagged entry costs: a hit checks the tokens of the entry's records (its tags,
 * and on a shared backend its method's generation) read with it — one MGET on Redis.
 */
export async function taggedHit(redis: RedisServer, budget: Budget): Promise<Section[]> {
  const memory = await measure(
    'Tagged memory hit, sequential',
    'The memory hit workload, the method untagged, with one fixed tag, or with two tags a function derives from ' +
      'the arguments. A tagged hit also reads its tag records and compares their tokens with the entry’s. Floor: the memory floor.',
    [memoryFloor, ...hoardSubjects<undefined>('MemoryBackend', () => new MemoryBackend())],
    undefined,
    budget,
  );
  const remote = await measure(
    'Tagged Redis hit, 1 in flight',
    'The Redis hit workload, tagged as above. On Redis every derived entry is checked against its method’s generation ' +
      'already; tags add their records to the same MGET. Floor: the ioredis floor.',
    [
      redisSubjects[0]!,
      ...hoardSubjects<RedisServer>(
        'RedisBackend',
        (server, tagging) => new RedisBackend({ url: server.url, prefix: `tagged-${tagging}:` }),
      ),
    ],
    redis,
    budget,
  );
  return [memory, remote];
}
