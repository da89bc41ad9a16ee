import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cached, CacheBackendError, CacheModule, RedisBackend, RedisBus, type CacheEvent } from 'hoard';
import { runBackendConformance } from 'hoard/testing';
import { startRedisSentinel, type RedisSentinelServers } from '../support/servers.js';
import { recordingListener, sleep, waitFor } from './tiered/support.js';

const hoardEntry = pathToFileURL(createRequire(import.meta.url).resolve('hoard')).href;
/** Where the measured figures go (docs/production.md quotes them; specs never assert timings). */
const figuresFile = join(fileURLToPath(new URL('../../', import.meta.url)), 'figures', 'sentinel.json');

/** What a steady stream of calls saw across one fault. */
interface Figures {
  fault: string;
  calls: number;
  rejectedCalls: number;
  wrongValues: number;
  acknowledgedDeletes: number;
  errorEvents: number;
  /** From the fault until the sentinels name the new master. */
  msToSwitch: number;
  /** From the fault to the first hit on an entry stored after the switch. */
  msToHitsOnNewMaster: number;
}

/**
 * A child that makes a backend and a bus on the sentinels, uses them, closes them and then has
 * nothing left to do: it exits by itself only if close() left no socket or timer behind.
 */
const childSource = `
import { RedisBackend, RedisBus } from ${JSON.stringify(hoardEntry)};
const [sentinels, name] = [JSON.parse(process.argv[2]), process.argv[3]];
const backend = new RedisBackend({ sentinels, name, prefix: 'child:' });
const bus = new RedisBus({ sentinels, name });
bus.listen({ invalidated() {}, connected() {} });
await backend.set('k', 1);
if ((await backend.get('k')) !== 1) throw new Error('no round trip');
while (!bus.connected) await new Promise((resolve) => setTimeout(resolve, 10));
// Let the failover detector subscribe on every sentinel before closing.
await new Promise((resolve) => setTimeout(resolve, 500));
await Promise.all([backend.close(), bus.close()]);
process.stdout.write('closed\\n');
`;

describe('RedisBackend and RedisBus on Redis Sentinel', function () {
  this.timeout(120_000);
  let sentinel: RedisSentinelServers;
  const connection = (group = sentinel) => ({ sentinels: group.sentinelAddresses, name: group.name });

  before(async () => {
    sentinel = await startRedisSentinel();
  });
  after(() => sentinel.stop());

  runBackendConformance('conformance through the sentinels', ({ prefix }) => new RedisBackend({ ...connection(), prefix }));

  it('close() leaves nothing open: a process that closed its backend and bus exits by itself', async () => {
    const dir = join(fileURLToPath(new URL('../../', import.meta.url)), 'sentinel-child');
    mkdirSync(dir, { recursive: true });
    const script = join(dir, 'child.mjs');
    writeFileSync(script, childSource);
    const child = spawn(process.execPath, [script, JSON.stringify(sentinel.sentinelAddresses), sentinel.name], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Bounded so that a regression fails here rather than hanging the run.
    const code = await Promise.race([exited, sleep(20_000).then(() => 'still running')]);
    if (code === 'still running') child.kill('SIGKILL');
    expect(output).to.include('closed');
    expect(code, output).to.equal(0);
  });

  // Each failover case on a Sentinel group of its own, fresh and healthy, so that no case depends
  // on the one before: what it stored (a case whose every call hits stores nothing after the
  // fault), which node is master, and the sentinel that just started a failover, which starts no
  // other for twice the failover-timeout.
  describe('under a steady call rate, each on a fresh Sentinel group', () => {
    let group: RedisSentinelServers;
    const truth = new Map<number, number>();
    let runs = 0;
    const read = cached(
      async (item: number) => {
        runs++;
        return truth.get(item) ?? 0;
      },
      { name: 'read', ttl: 0, key: (item: number) => `item:${item}` },
    );
    let backend: RedisBackend;
    const figures: Figures[] = [];

    beforeEach(async () => {
      group = await startRedisSentinel();
      CacheModule.reset();
      backend = new RedisBackend({ ...connection(group), prefix: 'steady:', timeout: 0.5 });
      CacheModule.register(backend);
    });
    afterEach(async () => {
      try {
        await CacheModule.close();
        CacheModule.reset();
      } finally {
        await group.stop();
      }
    });
    after(() => {
      mkdirSync(dirname(figuresFile), { recursive: true });
      writeFileSync(figuresFile, JSON.stringify(figures, null, 2) + '\n');
    });

    /**
     * Four items, each read in a loop; every fifth round its truth moves on and the entry is
     * deleted through the backend. A read must never return less than the truth as of the last
     * delete Redis acknowledged: a delete acknowledged by a demoted master and lost when it
     * resynced would bring the old value back.
     */
    async function steadily(fault: string, inject: () => Promise<void>): Promise<Figures> {
      const errors: CacheEvent[] = [];
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      CacheModule.on('error', (event) => errors.push(event));
      const keys = new Map<number, string>();
      // Learnt from hits as well as misses: a case must not depend on which entries are stored.
      const learn = (event: CacheEvent) => keys.set(Number(event.key.split('item:').pop()), event.key);
      CacheModule.on('miss', learn);
      let faultAt = Infinity;
      let switchedAt = Infinity;
      let hitsOnNewMaster = Infinity;
      const storedAfterFault = new Set<string>();
      CacheModule.on('set', (event) => {
        if (performance.now() > switchedAt) storedAfterFault.add(event.key);
      });
      CacheModule.on('hit', (event) => {
        learn(event);
        if (storedAfterFault.has(event.key)) hitsOnNewMaster = Math.min(hitsOnNewMaster, performance.now());
      });
      const acknowledged = new Map<number, number>();
      let calls = 0;
      let rejected = 0;
      let wrong = 0;
      let deletes = 0;
      let running = true;
      const loop = async (item: number) => {
        for (let round = 0; running; round++) {
          const floor = acknowledged.get(item) ?? 0;
          calls++;
          try {
            if ((await read(item)) < floor) wrong++;
          } catch {
            rejected++;
          }
          const key = keys.get(item);
          if (round % 5 === 4 && key !== undefined) {
            const next = (truth.get(item) ?? 0) + 1;
            truth.set(item, next);
            try {
              await backend.delete(key);
              acknowledged.set(item, next);
              deletes++;
            } catch {
              // Not acknowledged: the old value may stay, which is what a failed delete means.
            }
          }
          await sleep(5);
        }
      };
      const loops = [0, 1, 2, 3].map(loop);
      try {
        await sleep(1000);
        faultAt = performance.now();
        await inject();
        switchedAt = performance.now();
        await waitFor('hits on entries stored after the fault', () => hitsOnNewMaster < Infinity, 60_000);
        await sleep(1000);
      } finally {
        running = false;
        await Promise.all(loops);
        process.off('unhandledRejection', onUnhandled);
      }
      for (const event of errors) {
        expect(event.error).to.be.instanceOf(CacheBackendError);
        expect((event.error as Error).message).to.match(/^RedisBackend: \w+/);
        expect(event.operation).to.be.a('string');
      }
      const measured = {
        fault,
        calls,
        rejectedCalls: rejected,
        wrongValues: wrong,
        acknowledgedDeletes: deletes,
        errorEvents: errors.length,
        msToSwitch: Math.round(switchedAt - faultAt),
        msToHitsOnNewMaster: Math.round(hitsOnNewMaster - faultAt),
      };
      figures.push(measured);
      expect(unhandled).to.deep.equal([]);
      expect({ rejected, wrong }).to.deep.equal({ rejected: 0, wrong: 0 });
      expect(deletes).to.be.greaterThan(0);
      expect(runs).to.be.greaterThan(0);
      return measured;
    }

    it('SENTINEL FAILOVER: no wrong value, no rejected call; the new master serves hits', async () => {
      const before = await group.master();
      await steadily('SENTINEL FAILOVER', () => group.failover());
      expect(await group.master()).not.to.equal(before);
    });

    it('the master SIGKILLed (and restarted, to come back as a replica): no wrong value, no rejected call, the fault named in error events', async () => {
      const master = await group.master();
      const measured = await steadily('SIGKILL of the master', async () => {
        await master.kill();
        // Restarted once every sentinel names the new master, as an operator would: a sentinel
        // that had not yet heard of the promotion would still send clients to the restarted node,
        // an empty master until the sentinels convert it (a split brain Redis does not prevent).
        await waitFor('the sentinels chose another master', async () => (await group.master()) !== master, 30_000);
        await master.restart();
      });
      expect(measured.errorEvents).to.be.greaterThan(0);
    });

    it('a bus follows the switch: after a failover it is connected to the new master and hears other buses', async () => {
      const a = new RedisBus({ ...connection(group), channel: 'sentinel-bus' });
      const b = new RedisBus({ ...connection(group), channel: 'sentinel-bus' });
      const heard = recordingListener();
      a.listen(recordingListener());
      b.listen(heard);
      try {
        await waitFor('both subscribed', () => a.connected && b.connected, 10_000);
        await group.failover();
        await waitFor(
          'a message after the failover arrived',
          async () => {
            await a.publish({ keys: ['after'] }).catch(() => undefined);
            return heard.received.length > 0;
          },
          30_000,
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });
});
