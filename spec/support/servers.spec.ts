import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ask, startMemcached, startRedis, startRedisCluster, type ManagedServer, type RedisServer } from './servers.js';

const ping = (server: ManagedServer) => ask(server.port, 'PING\r\n', (reply) => reply.includes('\r\n'), 300);
const version = (server: ManagedServer) => ask(server.port, 'version\r\n', (reply) => reply.includes('\r\n'), 300);

async function refused(request: Promise<unknown>): Promise<string> {
  const error = await request.then(
    () => expect.fail('the server still answered'),
    (caught: NodeJS.ErrnoException) => caught,
  );
  return error.code ?? error.message;
}

describe('spec support: real servers', function () {
  this.timeout(20_000);

  describe('startRedis', () => {
    let redis: RedisServer;
    before(async () => {
      redis = await startRedis();
    });
    after(() => redis.stop());

    it('listens on a free loopback port, never the default one', async () => {
      expect(redis.host).to.equal('127.0.0.1');
      expect(redis.port).to.be.a('number').and.not.equal(6379);
      expect(redis.address).to.equal(`127.0.0.1:${redis.port}`);
      expect(redis.url).to.equal(`redis://127.0.0.1:${redis.port}`);
      expect(await ping(redis)).to.equal('+PONG\r\n');
    });

    it('runs without persistence', async () => {
      const reply = await ask(redis.port, 'CONFIG GET save\r\n', (text) => text.split('\r\n').length >= 5);
      expect(reply).to.equal('*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
    });

    it('pause hangs the server and resume brings it back', async () => {
      await redis.pause();
      try {
        expect(await refused(ping(redis))).to.match(/no complete reply/);
      } finally {
        redis.resume();
      }
      expect(await ping(redis)).to.equal('+PONG\r\n');
    });

    it('kill takes the server down and restart brings it back on the same port', async () => {
      const { port, pid } = redis;
      await redis.kill();
      expect(await refused(ping(redis))).to.equal('ECONNREFUSED');
      await redis.restart();
      expect(redis.port).to.equal(port);
      expect(redis.pid).to.not.equal(pid);
      expect(await ping(redis)).to.equal('+PONG\r\n');
    });

    it('gives two servers two ports', async () => {
      const other = await startRedis();
      try {
        expect(other.port).to.not.equal(redis.port);
        expect(await ping(other)).to.equal('+PONG\r\n');
      } finally {
        await other.stop();
      }
    });
  });

  describe('startMemcached', () => {
    it('starts with extra arguments and stops', async () => {
      const memcached = await startMemcached({ args: ['-I', '2m'] });
      try {
        expect(memcached.port).to.not.equal(11211);
        expect(await version(memcached)).to.match(/^VERSION \d+\.\d+/);
        const settings = await ask(memcached.port, 'stats settings\r\n', (reply) => reply.endsWith('END\r\n'));
        expect(settings).to.include('STAT item_size_max 2097152\r\n');
      } finally {
        await memcached.stop();
      }
      expect(await refused(version(memcached))).to.equal('ECONNREFUSED');
    });
  });

  describe('startRedisCluster', () => {
    it('starts masters that agree on a healthy cluster, and stops them all', async () => {
      const cluster = await startRedisCluster(3);
      try {
        expect(cluster.nodes).to.have.length(3);
        expect(cluster.startupNodes).to.deep.equal(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
        const nodes = await ask(cluster.nodes[0]!.port, 'CLUSTER NODES\r\n', (reply) => reply.split('\n').length > 3);
        expect(nodes.match(/master/g)).to.have.length(3);
      } finally {
        await cluster.stop();
      }
      for (const node of cluster.nodes) expect(await refused(ping(node))).to.equal('ECONNREFUSED');
    });
  });

  it('kills its servers when the test process crashes', async () => {
    const script = `
      const { startRedis } = await import(${JSON.stringify(new URL('./servers.js', import.meta.url).href)});
      const redis = await startRedis();
      console.log(redis.port);
      throw new Error('simulated crash');
    `;
    const crashed = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).then(
      () => expect.fail('the script should have crashed'),
      (error: { code: number; stdout: string }) => error,
    );
    expect(crashed.code).to.equal(1);
    const port = Number(crashed.stdout.trim());
    expect(port).to.be.greaterThan(0);
    expect(await refused(ask(port, 'PING\r\n', (reply) => reply.includes('\r\n'), 300))).to.equal('ECONNREFUSED');
  });
});
