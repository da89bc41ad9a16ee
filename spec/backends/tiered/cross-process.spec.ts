import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheModule } from 'hoard';
import { startRedis, type RedisServer } from '../../support/servers.js';
import { tierOver, waitFor, type Tier } from './support.js';

/**
 * The other process: a TieredBackend of its own over the same Redis, driven by one JSON command
 * a line on stdin, answering one JSON line on stdout. Written into build/ at test time so that
 * 'hoard' resolves to the built package (the package's self-reference).
 */
const CHILD_SCRIPT = `
import { createInterface } from 'node:readline';
import { MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';

const [url, prefix, channel] = process.argv.slice(2);
const l1 = new MemoryBackend();
const cache = new TieredBackend({ l1, l2: new RedisBackend({ url, prefix }), bus: new RedisBus({ url, channel }) });
const answer = (reply) => process.stdout.write(JSON.stringify(reply) + '\\n');

for await (const line of createInterface({ input: process.stdin })) {
  const { op, key, value } = JSON.parse(line);
  try {
    if (op === 'connected') answer({ result: cache.bus.connected });
    else if (op === 'set') answer({ result: await cache.set(key, value, 60) });
    else if (op === 'delete') answer({ result: await cache.delete(key) });
    else if (op === 'get') answer({ result: await cache.get(key) });
    else if (op === 'inL1') answer({ result: l1.has(key) });
    else answer({ error: 'unknown op ' + op });
  } catch (error) {
    answer({ error: String(error) });
  }
}
await cache.close();
`;

/** The child process, one request at a time. */
class Child {
  private readonly replies: AsyncIterator<string>;

  constructor(private readonly process: ChildProcessWithoutNullStreams) {
    this.replies = createInterface({ input: process.stdout })[Symbol.asyncIterator]();
  }

  async ask(op: string, key?: string, value?: unknown): Promise<unknown> {
    this.process.stdin.write(`${JSON.stringify({ op, key, value })}\n`);
    const next = await this.replies.next();
    if (next.done) throw new Error('the child process ended');
    const reply = JSON.parse(next.value) as { result?: unknown; error?: string };
    if (reply.error !== undefined) throw new Error(`child: ${reply.error}`);
    return reply.result;
  }

  async end(): Promise<void> {
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.stdin.end();
    await exited;
  }
}

describe('TieredBackend across processes', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  const tiers: Tier[] = [];
  let runs = 0;
  let shared: { prefix: string; channel: string };

  /** One more "process" over the shared prefix and channel, with its bus subscribed. */
  async function process_(): Promise<Tier> {
    const tier = tierOver({ l2: redis.url }, shared);
    tiers.push(tier);
    await waitFor('the bus subscribed', () => tier.bus.connected, 5000);
    return tier;
  }

  before(async () => {
    redis = await startRedis();
  });
  beforeEach(() => {
    const name = `cross-${runs++}`;
    shared = { prefix: `${name}:`, channel: name };
  });
  afterEach(async () => {
    CacheModule.reset();
    await Promise.all(tiers.splice(0).map(({ tiered }) => tiered.close()));
  });
  after(async () => {
    await redis.stop();
  });

  // Entries are seeded straight into L2, so that no message of the seeding write is still on its
  // way when the other process reads: it would (rightly) drop the copy the spec wants to see.
  describe('two sets of connections in one process', () => {
    afterEach(() => sinon.restore());

    it("a write on one removes the other's L1 copy within 1 s, and the other then reads the new value", async () => {
      const one = await process_();
      const other = await process_();
      await one.l2.set('k', 'first');
      expect(await other.tiered.get('k')).to.equal('first');
      expect(other.l1.has('k')).to.equal(true);
      await one.tiered.set('k', 'second');
      await waitFor("the other's L1 copy is gone", () => !other.l1.has('k'));
      expect(await other.tiered.get('k')).to.equal('second');
      expect(one.l1.get('k')).to.equal('second', 'the writer keeps its own fresh copy');
    });

    it("delete, deleteMany, setMany, increment and clear each remove the other's copies", async () => {
      const one = await process_();
      const other = await process_();
      const changes: [string, string[], () => Promise<unknown>][] = [
        ['delete', ['a'], () => one.tiered.delete('a')],
        ['deleteMany', ['a', 'b'], () => one.tiered.deleteMany(['a', 'b'])],
        ['setMany', ['a', 'b'], () => one.tiered.setMany({ a: 10, b: 20 })],
        ['increment', ['n'], () => one.tiered.increment('n')],
        ['clear', ['a', 'b', 'n'], () => one.tiered.clear()],
      ];
      for (const [name, keys, change] of changes) {
        await one.l2.setMany({ a: 1, b: 2, n: 3 });
        expect(await other.tiered.getMany(['a', 'b', 'n'])).to.deep.equal([1, 2, 3]);
        expect(keys.every((key) => other.l1.has(key))).to.equal(true);
        await change();
        await waitFor(`${name} reached the other's L1`, () => keys.every((key) => !other.l1.has(key)));
      }
    });

    it('a method evicted on one is recomputed on the other', async () => {
      const one = await process_();
      const other = await process_();
      let computed = 0;
      const build = () => {
        class Profiles {
          @Cached({ backend: 'tiered', ttl: 60, key: (id: number) => `profile:${id}` })
          async profile(id: number): Promise<string> {
            return `profile ${id} v${++computed}`;
          }
        }
        return new Profiles();
      };
      const profiles = build();
      const heard = sinon.spy(other.l1, 'delete');
      CacheModule.register('tiered', one.tiered);
      expect(await profiles.profile(7)).to.equal('profile 7 v1');
      await waitFor('the other heard of the store', () => heard.calledWith('profile:7'));
      CacheModule.register('tiered', other.tiered);
      expect(await profiles.profile(7)).to.equal('profile 7 v1');
      expect(other.l1.has('profile:7')).to.equal(true);
      await one.tiered.delete('profile:7');
      await waitFor("the other's copy is gone", () => !other.l1.has('profile:7'));
      expect(await profiles.profile(7)).to.equal('profile 7 v2');
    });
  });

  describe('a real child process', () => {
    let child: Child;
    let buildDir: string;

    beforeEach(async () => {
      // build/spec-legacy/backends/tiered/ → build/: inside the package, so 'hoard' resolves to it.
      buildDir = mkdtempSync(join(fileURLToPath(new URL('../../../', import.meta.url)), 'tiered-child-'));
      const script = join(buildDir, 'child.mjs');
      writeFileSync(script, CHILD_SCRIPT);
      child = new Child(spawn(process.execPath, [script, redis.url, shared.prefix, shared.channel], { stdio: 'pipe' }));
      await waitFor('the child subscribed', async () => (await child.ask('connected')) === true, 10_000);
    });
    afterEach(async () => {
      await child.end();
      rmSync(buildDir, { recursive: true, force: true });
    });

    it("the child's writes and deletes remove this process's L1 copy within 1 s", async () => {
      const here = await process_();
      await here.l2.set('k', 'seeded');
      expect(await here.tiered.get('k')).to.equal('seeded');
      await child.ask('set', 'k', 'changed by the child');
      await waitFor('the L1 copy is gone after the write', () => !here.l1.has('k'));
      expect(await here.tiered.get('k')).to.equal('changed by the child');
      expect(here.l1.has('k')).to.equal(true);
      await child.ask('delete', 'k');
      await waitFor('the L1 copy is gone after the delete', () => !here.l1.has('k'));
      expect(await here.tiered.get('k')).to.equal(undefined);
    });

    it("this process's writes remove the child's L1 copy within 1 s", async () => {
      const here = await process_();
      await here.l2.set('k', 'seeded');
      expect(await child.ask('get', 'k')).to.equal('seeded');
      expect(await child.ask('inL1', 'k')).to.equal(true);
      await here.tiered.set('k', 'changed by the parent');
      await waitFor("the child's copy is gone", async () => (await child.ask('inL1', 'k')) === false);
      expect(await child.ask('get', 'k')).to.equal('changed by the parent');
    });
  });
});
