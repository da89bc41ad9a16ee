import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { CacheBackendError, RedisBus } from 'hoard';
import { startRedis, startRedisCluster, type RedisServer } from '../../support/servers.js';
import { recordingListener, waitFor } from './support.js';

describe('RedisBus', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let raw: Redis;
  const made: RedisBus[] = [];
  let channels = 0;
  let channel: string;

  /** A bus on this test's channel that records what it hears, once it is subscribed. */
  async function listening(options: Partial<ConstructorParameters<typeof RedisBus>[0]> = {}) {
    const bus = new RedisBus({ url: redis.url, channel, ...options });
    made.push(bus);
    const listener = recordingListener();
    bus.listen(listener);
    await waitFor('the bus subscribed', () => bus.connected, 5000);
    return { bus, listener };
  }

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    raw.on('error', () => undefined);
  });
  beforeEach(() => {
    channel = `bus-spec-${channels++}`;
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((bus) => bus.close()));
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  describe('options', () => {
    it('takes a url and ioredis options, or a client, not both', async () => {
      expect(() => new RedisBus({ url: redis.url, client: raw })).to.throw(TypeError, /not both/);
      const bus = new RedisBus({ host: redis.host, port: redis.port, channel });
      made.push(bus);
      bus.listen(recordingListener());
      await waitFor('the bus subscribed', () => bus.connected, 5000);
    });

    it('refuses an empty channel and a timeout that is not a positive number of seconds', () => {
      expect(() => new RedisBus({ url: redis.url, channel: '' })).to.throw(TypeError, /channel/);
      for (const timeout of [0, -1, NaN, Infinity]) {
        expect(() => new RedisBus({ url: redis.url, timeout })).to.throw(TypeError, /timeout/);
      }
    });

    it('serves one listener only', async () => {
      const { bus } = await listening();
      expect(() => bus.listen(recordingListener())).to.throw(TypeError, /its own bus/);
    });
  });

  describe('messages', () => {
    it("delivers other buses' keys and clears, and never a bus's own messages", async () => {
      const first = await listening();
      const second = await listening();
      await first.bus.publish({ keys: ['a', 'b'] });
      await second.bus.publish({ clear: true });
      await second.bus.publish({ keys: ['c'] });
      await waitFor('the second bus heard the first', () => second.listener.received.length === 1);
      await waitFor('the first bus heard the second', () => first.listener.received.length === 2);
      // Each subscriber gets the channel's messages in publishing order, so by now each has had its own back, had it not been skipped.
      expect(second.listener.received).to.deep.equal([{ keys: ['a', 'b'] }]);
      expect(first.listener.received).to.deep.equal([{ clear: true }, { keys: ['c'] }]);
    });

    it('publishes small JSON naming the keys, never values', async () => {
      const seen: string[] = [];
      const observer = raw.duplicate();
      observer.on('message', (_channel: string, text: string) => seen.push(text));
      await observer.subscribe(channel);
      try {
        const { bus } = await listening();
        await bus.publish({ keys: ['user:1'] });
        await waitFor('the message arrived', () => seen.length === 1);
        const message = JSON.parse(seen[0]!);
        expect(Object.keys(message).sort()).to.deep.equal(['from', 'keys']);
        expect(message.keys).to.deep.equal(['user:1']);
        expect(seen[0]!.length).to.be.below(64);
      } finally {
        observer.disconnect();
      }
    });

    it('ignores malformed and foreign messages and keeps listening', async () => {
      const { bus, listener } = await listening();
      const garbage = [
        'not json',
        '',
        'null',
        '42',
        '"text"',
        '[]',
        '{}',
        '{"keys":["a"]}',
        '{"from":7,"keys":["a"]}',
        '{"from":"x","keys":"a"}',
        '{"from":"x","keys":[1,2]}',
        '{"from":"x","keys":["a",null]}',
        '{"from":"x","clear":"yes"}',
        '{"from":"x","__proto__":{"keys":["polluted"]}}',
        '{"from":"x","keys":["a"]'.repeat(1000),
      ];
      for (const text of garbage) await raw.publish(channel, text);
      await raw.publish(`${channel}-elsewhere`, JSON.stringify({ from: 'other', keys: ['elsewhere'] }));
      await raw.publish(channel, JSON.stringify({ from: 'other', keys: ['good'] }));
      await waitFor('the well-formed message arrived', () => listener.received.length > 0);
      expect(listener.received).to.deep.equal([{ keys: ['good'] }]);
      expect(({} as { keys?: unknown }).keys).to.equal(undefined);
      expect(bus.connected).to.equal(true);
    });
  });

  describe('a client passed in', () => {
    it('publishes through it, subscribes on a duplicate and leaves it open on close', async () => {
      const client = new Redis(redis.url);
      try {
        const bus = new RedisBus({ client, channel });
        made.push(bus);
        const listener = recordingListener();
        bus.listen(listener);
        await waitFor('the bus subscribed', () => bus.connected, 5000);
        // The client is still in normal mode (it did not subscribe itself) and can publish.
        expect(await client.set('plain', 'command')).to.equal('OK');
        const other = await listening();
        await bus.publish({ keys: ['k'] });
        await waitFor('the other bus heard it', () => other.listener.received.length === 1);
        await other.bus.publish({ keys: ['back'] });
        await waitFor('the bus heard the other', () => listener.received.length === 1);
        await bus.close();
        expect(bus.connected).to.equal(false);
        expect(client.status).to.equal('ready');
        expect(await client.ping()).to.equal('PONG');
      } finally {
        client.disconnect();
      }
    });

    it('works over a Redis Cluster client', async () => {
      const cluster = await startRedisCluster();
      const client = new Cluster(cluster.startupNodes);
      const otherClient = client.duplicate();
      try {
        const first = new RedisBus({ client, channel });
        const second = new RedisBus({ client: otherClient, channel });
        made.push(first, second);
        const heard = recordingListener();
        first.listen(recordingListener());
        second.listen(heard);
        await waitFor('both subscribed', () => first.connected && second.connected, 10_000);
        await first.publish({ keys: ['over the cluster'] });
        await waitFor('the other heard it', () => heard.received.length === 1);
        expect(heard.received).to.deep.equal([{ keys: ['over the cluster'] }]);
        await first.close();
        expect(client.status).to.equal('ready');
      } finally {
        client.disconnect();
        otherClient.disconnect();
        await cluster.stop();
      }
    });

    it('subscribes even when the client connects lazily', async () => {
      const client = new Redis(redis.url, { lazyConnect: true });
      try {
        const bus = new RedisBus({ client, channel });
        made.push(bus);
        bus.listen(recordingListener());
        await waitFor('the bus subscribed', () => bus.connected, 5000);
      } finally {
        client.disconnect();
      }
    });
  });

  describe('outages', () => {
    afterEach(async () => {
      // A spec that killed the server leaves it restarted for the next.
      await redis.restart();
      await waitFor('the raw client is back', async () => (await raw.ping().catch(() => '')) === 'PONG', 5000);
    });

    it('says it is down while the server is, reconnects by itself and tells its listener', async () => {
      const first = await listening();
      const second = await listening();
      expect(first.listener.connects).to.equal(1);
      await redis.kill();
      await waitFor('the bus noticed the outage', () => !first.bus.connected);
      await redis.restart();
      await waitFor('the bus is back', () => first.bus.connected && second.bus.connected, 5000);
      expect(first.listener.connects).to.equal(2);
      await second.bus.publish({ keys: ['after the outage'] });
      await waitFor('messages flow again', () => first.listener.received.length === 1);
      expect(first.listener.received).to.deep.equal([{ keys: ['after the outage'] }]);
    });

    it('rejects a publish that cannot reach the server with a CacheBackendError', async () => {
      const { bus } = await listening({ timeout: 0.2 });
      await redis.kill();
      const failure = await bus.publish({ keys: ['k'] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).to.be.instanceOf(CacheBackendError);
      expect((failure as CacheBackendError).operation).to.equal('publish');
    });
  });
});
