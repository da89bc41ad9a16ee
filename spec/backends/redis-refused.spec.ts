import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import sinon from 'sinon';
import {
  cached,
  CacheBackendError,
  CacheModule,
  MemoryBackend,
  RedisBackend,
  RedisBus,
  TieredBackend,
  type CacheEvent,
} from 'hoard';
import { runBackendConformance } from 'hoard/testing';
import { ignoreErrors } from '#src/backends/redis-connection.js';
import { watchUnhandledRejections } from '../support/unhandled.js';
import { startRedis, startRedisTls, type RedisServer, type RedisTlsServer } from '../support/servers.js';
import { waitFor } from './tiered/support.js';

/** Far beyond how long a spec may run: a call that waited for it would fail the spec by mocha's timeout. */
const NEVER_REACHED_TIMEOUT = 60;

/**
 * The commands of the ACL rule docs/production.md gives for a hoard user (read from the page, so
 * that the page and what is tested cannot drift apart).
 */
const HOARD_COMMANDS = (() => {
  const page = readFileSync(fileURLToPath(new URL('../../../docs/production.md', import.meta.url)), 'utf8');
  const rule = /^ACL SETUSER hoard on >\S+ ~billing:\* &billing:invalidations (.+)$/m.exec(page);
  if (rule === null) throw new Error('docs/production.md has no ACL SETUSER line for the hoard user');
  return rule[1]!;
})();
const aclRule = (prefix: string, channel: string) => `on >hoard-secret ~${prefix}* &${channel} ${HOARD_COMMANDS}`;

describe('Redis connections the server refuses', function () {
  this.timeout(30_000);
  let errors: CacheEvent[];
  let unhandled: ReturnType<typeof watchUnhandledRejections>;
  let runs: number;
  const square = cached(
    async (n: number) => {
      runs++;
      return n * n;
    },
    { name: 'square', ttl: 60 },
  );

  /** Ten calls, each returning its own value whatever the cache does. */
  async function callsReturnTheirValues(): Promise<void> {
    const results = await Promise.all(Array.from({ length: 10 }, (_, n) => square(n)));
    expect(results).to.deep.equal(Array.from({ length: 10 }, (_, n) => n * n));
  }

  function refusalsNaming(pattern: RegExp): CacheEvent[] {
    for (const event of errors) {
      expect(event.error).to.be.instanceOf(CacheBackendError);
      expect(String((event.error as Error).message)).not.to.match(/got no answer/);
    }
    const connect = errors.filter((event) => event.operation === 'connect');
    expect(connect, 'the refusal is an error event of its own, with no key').to.have.length.greaterThan(0);
    for (const event of connect) {
      expect(event.key).to.equal('');
      expect((event.error as Error).message).to.match(pattern);
    }
    return connect;
  }

  beforeEach(() => {
    CacheModule.reset();
    errors = [];
    runs = 0;
    CacheModule.on('error', (event) => errors.push(event));
    unhandled = watchUnhandledRejections();
  });
  afterEach(async () => {
    unhandled.stop();
    expect(unhandled.reasons).to.deep.equal([]);
    await CacheModule.close();
    CacheModule.reset();
  });

  describe('over TLS', () => {
    let tls: RedisTlsServer;
    before(async () => {
      tls = await startRedisTls();
    });
    after(() => tls.stop());

    runBackendConformance(
      'conformance over TLS (rediss:// and the CA)',
      ({ prefix }) => new RedisBackend({ url: tls.tlsUrl, tls: { ca: tls.certificates.ca }, prefix }),
    );

    it('connects with `tls` options instead of a rediss:// url', async () => {
      CacheModule.register(
        new RedisBackend({ host: tls.host, port: tls.port, tls: { ca: tls.certificates.ca }, prefix: 'tls:' }),
      );
      await callsReturnTheirValues();
      await callsReturnTheirValues();
      expect(runs).to.equal(10);
      expect(errors).to.deep.equal([]);
    });

    it('a server certificate from an unknown CA: reported as such at once, calls return their values without waiting for the timeout', async () => {
      CacheModule.register(new RedisBackend({ url: tls.tlsUrl, prefix: 'tls:', timeout: NEVER_REACHED_TIMEOUT }));
      await callsReturnTheirValues();
      await callsReturnTheirValues();
      expect(runs).to.equal(20);
      refusalsNaming(/refuses the connection: self[- ]signed certificate in certificate chain/);
      const calls = errors.filter((event) => event.operation !== 'connect');
      expect(calls.length).to.be.greaterThan(0);
      for (const event of calls)
        expect((event.error as Error).message).to.match(/refuses the connection: self[- ]signed certificate/);
    });

    it("guards the socket behind a connection error: a failed handshake's second error is not uncaught", () => {
      const client = new Redis({ lazyConnect: true });
      ignoreErrors(client);
      const socket = new EventEmitter();
      // What ioredis does: it hears a socket's first error only (`once`) and emits it on the client.
      socket.once('error', (error: Error) => client.emit('error', error));
      (client as unknown as { stream: EventEmitter }).stream = socket;
      socket.emit('error', new Error('self-signed certificate'));
      expect(() => socket.emit('error', new Error('tlsv1 alert decode error'))).not.to.throw();
      client.disconnect();
    });

    it('a bus that does not trust the certificate reports it, and one given the CA works', async () => {
      const untrusting = new RedisBus({ url: tls.tlsUrl });
      const faults: Error[] = [];
      untrusting.onFault((error) => faults.push(error));
      await waitFor('the refusal was reported', () => faults.length > 0, 5000);
      expect(faults[0]!.message).to.match(/RedisBus: the server refuses the connection: self[- ]signed certificate/);
      expect(untrusting.connected).to.equal(false);
      await untrusting.close();
      const trusting = new RedisBus({ url: tls.tlsUrl, tls: { ca: tls.certificates.ca } });
      trusting.listen({ invalidated: () => undefined, connected: () => undefined });
      await waitFor('the bus subscribed over TLS', () => trusting.connected, 5000);
      await trusting.publish({ keys: ['k'] });
      await trusting.close();
    });
  });

  describe('passwords and ACL users', () => {
    let redis: RedisServer;
    let admin: Redis;
    let user = 0;
    before(async () => {
      redis = await startRedis();
      admin = new Redis(redis.url);
    });
    afterEach(() => admin.flushall());
    after(async () => {
      admin.disconnect();
      await redis.stop();
    });

    it('a wrong password (WRONGPASS): reported at once, calls return their values; fixed, caching resumes', async () => {
      const name = `user-${user++}`;
      await admin.acl('SETUSER', name, ...aclRule('app:', 'hoard:invalidations').replace('>hoard-secret', '>right').split(' '));
      CacheModule.register(
        new RedisBackend({ url: redis.url, username: name, password: 'wrong', prefix: 'app:', timeout: NEVER_REACHED_TIMEOUT }),
      );
      await callsReturnTheirValues();
      await callsReturnTheirValues();
      expect(runs).to.equal(20);
      refusalsNaming(/refuses the connection: WRONGPASS/);
      await admin.acl('SETUSER', name, '>wrong');
      await waitFor(
        'caching resumed',
        async () => {
          const before = runs;
          await square(1);
          return runs === before;
        },
        10_000,
      );
    });

    it('an ACL user with only the rule docs/production.md gives: everything works, nothing on the console', async () => {
      const name = `user-${user++}`;
      await admin.acl('SETUSER', name, ...aclRule('app:', 'hoard:invalidations').split(' '));
      const console = sinon.spy(globalThis.console, 'warn');
      const consoleError = sinon.spy(globalThis.console, 'error');
      const consoleLog = sinon.spy(globalThis.console, 'log');
      try {
        const connection = { url: redis.url, username: name, password: 'hoard-secret' };
        const tier = () =>
          new TieredBackend({
            l1: new MemoryBackend(),
            l2: new RedisBackend({ ...connection, prefix: 'app:' }),
            bus: new RedisBus(connection),
          });
        const [a, b] = [tier(), tier()];
        CacheModule.register(a);
        await waitFor('both buses subscribed', () => a.bus!.connected && b.bus!.connected, 5000);
        await callsReturnTheirValues();
        await callsReturnTheirValues();
        expect(runs).to.equal(10);
        await b.set('shared', 1);
        expect(await a.get('shared')).to.equal(1);
        expect(await a.increment('counter')).to.equal(1);
        await b.delete('shared');
        await waitFor('the bus dropped the copy', () => !a.l1.has('shared'));
        await a.clear();
        await b.close();
        expect(errors).to.deep.equal([]);
        expect(console.called || consoleError.called || consoleLog.called, 'the client wrote to the console').to.equal(false);
      } finally {
        console.restore();
        consoleError.restore();
        consoleLog.restore();
      }
    });

    it("keys outside the user's pattern (NOPERM): every call returns its value, the fault names NOPERM", async () => {
      const name = `user-${user++}`;
      await admin.acl('SETUSER', name, ...aclRule('app:', 'hoard:invalidations').split(' '));
      CacheModule.register(
        new RedisBackend({
          url: redis.url,
          username: name,
          password: 'hoard-secret',
          prefix: 'elsewhere:',
          timeout: NEVER_REACHED_TIMEOUT,
        }),
      );
      await callsReturnTheirValues();
      expect(errors.length).to.be.greaterThan(0);
      for (const event of errors) expect((event.error as Error).message).to.match(/NOPERM/);
    });

    it('a bus refused its channel (NOPERM): an error event, L1 copies stay short-lived; allowed, it subscribes and drops what it may have missed', async () => {
      const name = `user-${user++}`;
      const channel = `channel-${name}`;
      await admin.acl('SETUSER', name, ...aclRule('app:', 'other-channel').split(' '));
      const connection = { url: redis.url, username: name, password: 'hoard-secret' };
      const l1 = new MemoryBackend();
      const tiered = new TieredBackend({
        l1,
        l2: new RedisBackend({ ...connection, prefix: 'app:' }),
        bus: new RedisBus({ ...connection, channel }),
        l1Ttl: 60,
      });
      CacheModule.register(tiered);
      await waitFor('the refusal was reported', () => errors.length > 0, 5000);
      expect(errors[0]).to.include({ key: '', operation: 'subscribe' });
      expect((errors[0]!.error as Error).message).to.match(new RegExp(`RedisBus: subscribing to "${channel}": NOPERM`));
      expect(tiered.bus!.connected).to.equal(false);
      await tiered.set('k', 'v');
      const copy = l1.peekWithTtl('k');
      expect(copy).to.include({ value: 'v' });
      expect((copy as { ttl: number }).ttl).to.be.at.most(1);
      const drops = sinon.spy(l1, 'clear');
      await admin.acl('SETUSER', name, `&${channel}`);
      await waitFor('the bus subscribed', () => tiered.bus!.connected, 5000);
      expect(drops.called, 'the copies that may have missed a message were dropped').to.equal(true);
      await tiered.set('k', 'v');
      expect((l1.peekWithTtl('k') as { ttl: number }).ttl).to.be.above(1);
    });
  });
});
