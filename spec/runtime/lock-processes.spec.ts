import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMemcached, startRedis, type ManagedServer } from '../support/servers.js';

/*
 * Distributed single flight across real processes: each child registers a backend on the
 * same server and calls one cached function on a cold key 50 times at once.
 */
const hoardEntry = import.meta.resolve('hoard');

const childSource = `
import { cached, CacheModule, RedisBackend, MemcachedBackend } from ${JSON.stringify(hoardEntry)};
const [kind, address, prefix, mode, lockTtl, lockTimeout, computeMs] = process.argv.slice(2);
const backend = kind === 'redis'
  ? new RedisBackend({ url: 'redis://' + address, prefix })
  : new MemcachedBackend({ servers: [address], prefix });
CacheModule.register(backend);
let computations = 0;
const report = cached(async (id) => {
  computations++;
  if (mode === 'die') process.stdout.write('computing\\n');
  await new Promise((resolve) => setTimeout(resolve, Number(computeMs)));
  return { id, by: process.pid };
}, { name: 'report', ttl: 60, lock: true, lockTtl: Number(lockTtl), lockTimeout: Number(lockTimeout) });
const started = Date.now();
const values = await Promise.all(Array.from({ length: 50 }, () => report(7)));
process.stdout.write(JSON.stringify({ computations, values, waitedMs: Date.now() - started }) + '\\n');
await CacheModule.close();
`;

interface ChildResult {
  computations: number;
  values: { id: number; by: number }[];
  waitedMs: number;
}

for (const kind of ['redis', 'memcached'] as const) {
  describe(`lock: distributed single flight across processes on ${kind}`, function () {
    this.timeout(30_000);
    let server: ManagedServer;
    let dir: string;
    let script: string;
    let run = 0;

    before(async () => {
      server = kind === 'redis' ? await startRedis() : await startMemcached();
      dir = await mkdtemp(join(tmpdir(), 'hoard-lock-'));
      script = join(dir, 'child.mjs');
      await writeFile(script, childSource);
    });

    after(async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });

    function child(prefix: string, mode: 'compute' | 'die', lockTtl: number, lockTimeout: number, computeMs: number) {
      const proc = spawn(
        process.execPath,
        [script, kind, server.address, prefix, mode, String(lockTtl), String(lockTimeout), String(computeMs)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let output = '';
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const computing = new Promise<void>((resolve) => proc.stdout.on('data', () => output.includes('computing') && resolve()));
      const result = new Promise<ChildResult>((resolve, reject) =>
        proc.on('exit', (code) => {
          const last = output.trim().split('\n').pop() ?? '';
          if (code === 0) resolve(JSON.parse(last) as ChildResult);
          else reject(new Error(`child exited with ${code}: ${output}`));
        }),
      );
      return { proc, computing, result };
    }

    it('4 processes × 50 concurrent calls on one cold key compute it exactly once', async () => {
      const prefix = `lock${run++}:`;
      const results = await Promise.all(Array.from({ length: 4 }, () => child(prefix, 'compute', 10, 5, 300).result));
      expect(results.reduce((sum, r) => sum + r.computations, 0)).to.equal(1);
      const computedBy = results[0]!.values[0]!.by;
      for (const r of results) expect(r.values).to.deep.equal(Array(50).fill({ id: 7, by: computedBy }));
    });

    it('when the holder dies mid-compute, another process computes after lockTtl, within lockTimeout + compute', async () => {
      const prefix = `lock${run++}:`;
      const holder = child(prefix, 'die', 1, 5, 10_000);
      holder.result.catch(() => undefined);
      await holder.computing;
      holder.proc.kill('SIGKILL');
      const survivor = await child(prefix, 'compute', 1, 5, 100).result;
      expect(survivor.computations).to.equal(1);
      expect(survivor.values.every((v) => v.by !== holder.proc.pid)).to.equal(true);
      expect(survivor.waitedMs).to.be.below(5_000 + 100 + 1_000);
    });
  });
}
