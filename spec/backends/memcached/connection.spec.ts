import { expect } from 'chai';
import { Connection, UNTIL_NOOP, type ConnectionEvents } from '#src/backends/memcached/connection.js';
import { META_NOOP, metaGet, metaSet, type Frame } from '#src/backends/memcached/protocol.js';
import { freePort, startMemcached, type ManagedServer } from '../../support/servers.js';

const token = (key: string) => Buffer.from(key).toString('base64');

/** Records what a connection reports to its server. */
function recorder(): ConnectionEvents & { failures: Error[]; successes: number } {
  return {
    failures: [],
    successes: 0,
    onFailure(_connection, error) {
      this.failures.push(error);
    },
    onSuccess() {
      this.successes++;
    },
  };
}

describe('memcached Connection', function () {
  this.timeout(10_000);
  let server: ManagedServer;
  const open: Connection[] = [];

  function connect(events: ConnectionEvents, timeoutMs = 1000, port = server.port): Connection {
    const connection = new Connection('127.0.0.1', port, timeoutMs, events);
    open.push(connection);
    return connection;
  }

  before(async () => {
    server = await startMemcached();
  });
  afterEach(() => {
    for (const connection of open.splice(0)) connection.destroy(new Error('spec over'));
  });
  after(async () => {
    await server.stop();
  });

  it('pipelines thousands of requests and gives each its own answer, in order', async () => {
    const events = recorder();
    const connection = connect(events);
    const count = 3000;
    const stored = await Promise.all(
      Array.from({ length: count }, (_, i) => connection.exchange(metaSet(token(`p${i}`), Buffer.from(`value ${i}`), 'T60'), 1)),
    );
    expect(stored.every(([frame]) => frame!.code === 'HD')).to.equal(true);
    const read = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        connection.exchange([metaGet(token(i % 7 === 0 ? `absent${i}` : `p${i}`), 'v')], 1),
      ),
    );
    read.forEach(([frame], i) => {
      if (i % 7 === 0) expect(frame!.code).to.equal('EN');
      else expect(frame!.value!.toString()).to.equal(`value ${i}`);
    });
    expect(events.successes).to.equal(2 * count);
    expect(connection.pending).to.equal(0);
  });

  it('collects a quiet batch up to MN', async () => {
    const connection = connect(recorder());
    await connection.exchange(metaSet(token('q1'), Buffer.from('one'), 'T60'), 1);
    const frames: Frame[] = await connection.exchange(
      [metaGet(token('q1'), 'v q O1'), metaGet(token('q-absent'), 'v q O2'), META_NOOP],
      UNTIL_NOOP,
    );
    expect(frames.map((frame) => [frame.code, frame.flags.join(' ')])).to.deep.equal([
      ['VA', 'O1'],
      ['MN', ''],
    ]);
  });

  it('rejects everything pending when a hung server does not answer in time, and reports it once', async () => {
    const events = recorder();
    const connection = connect(events, 200);
    await connection.exchange([metaGet(token('warm'))], 1);
    await server.pause();
    try {
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => connection.exchange([metaGet(token('k'))], 1)));
      expect(results.map((result) => result.status)).to.deep.equal(Array(5).fill('rejected'));
      expect((results[0] as PromiseRejectedResult).reason.message).to.match(/no answer within 200 ms/);
      expect(events.failures).to.have.length(1);
      expect(connection.usable).to.equal(false);
      expect(await connection.exchange([META_NOOP], 1).catch((error: Error) => error.message)).to.match(/no answer/);
    } finally {
      server.resume();
    }
    const fresh = connect(recorder());
    expect((await fresh.exchange([META_NOOP], 1))[0]!.code).to.equal('MN');
  });

  it('reports a refused connection as a failure of the pending request', async () => {
    const events = recorder();
    const connection = connect(events, 1000, await freePort());
    const error = await connection.exchange([META_NOOP], 1).catch((caught: Error) => caught);
    expect(error)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/ECONNREFUSED/);
    expect(events.failures).to.deep.equal([error]);
  });

  it('does not report an idle connection that the server closes', async () => {
    const events = recorder();
    const restarting = await startMemcached();
    try {
      const connection = connect(events, 1000, restarting.port);
      await connection.exchange([META_NOOP], 1);
      await restarting.kill();
      while (connection.usable) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(events.failures).to.deep.equal([]);
    } finally {
      await restarting.stop();
    }
  });

  it('closes once its pending requests have answered', async () => {
    const connection = connect(recorder());
    const pending = connection.exchange([META_NOOP], 1);
    connection.close();
    expect((await pending)[0]!.code).to.equal('MN');
    expect(connection.usable).to.equal(false);
    expect(await connection.exchange([META_NOOP], 1).catch((error: Error) => error.message)).to.match(/closed/);
  });
});
