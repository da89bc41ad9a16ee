/**
 * A short soak (about 20 s; `npm run soak` runs the long one): worker processes call decorated
 * methods while their Redis and memcached servers are killed, hung and restarted at random.
 * What it asserts is what must hold under any timing: every value right, no call rejected,
 * nothing unhandled, and the backends used again once the servers are back.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('soak (short)', function () {
  this.timeout(120_000);

  it('survives random kills and hangs of every server: no wrong value, no rejected call, nothing unhandled, recovery', async () => {
    const run = promisify(execFile);
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'soak/tsconfig.json')], {
      cwd: root,
    });
    let stdout: string;
    try {
      ({ stdout } = await run(
        process.execPath,
        [join(root, 'build/soak/soak/run.js'), '--duration', '20', '--workers', '2', '--json'],
        { cwd: root },
      ));
    } catch (error) {
      // A failed soak exits 1 and still prints its summary and samples: show them.
      stdout = (error as { stdout?: string }).stdout ?? '';
      if (!stdout.trim()) throw error;
    }
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    const context = lines.slice(0, -1).join('\n');
    expect(summary.wrong, context).to.equal(0);
    expect(summary.callerErrors, context).to.equal(0);
    expect(summary.unhandled, context).to.equal(0);
    expect(summary.passed, context).to.equal(true);
    // The run did what it claims: calls were made, servers went down, hoard reported the faults.
    expect(summary.calls).to.be.greaterThan(1000);
    expect(summary.outages).to.be.greaterThan(3);
    expect(summary.errorsReported).to.be.greaterThan(0);
  });
});
