import { expect } from 'chai';
import { Cached, CacheBackendError, CacheModule, CacheValueTooLargeError, type CacheEvent } from 'hoard';
import { MemcachedBackend, type MemcachedBackendOptions } from '#src/backends/memcached/memcached-backend.js';
import { runBackendConformance } from 'hoard/testing';
import { ask, startMemcached, type ManagedServer } from '../../support/servers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const ends = (suffix: string) => (reply: string) => reply.endsWith(suffix);

/** One item as `lru_crawler metadump` lists it: the binary key and its expiry (Unix time, -1 = never). */
interface Item {
  /** The key's bytes; `key` is them read as UTF-8. */
  raw: Buffer;
  key: string;
  exp: number;
}

/** metadump escapes keys like URLs, byte by byte. */
function unescapeKey(escaped: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    if (escaped[i] === '%') {
      bytes.push(parseInt(escaped.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(escaped.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/** Every item on a server, read over a plain socket behind the backend's back. */
async function items(server: ManagedServer): Promise<Item[]> {
  const reply = await ask(server.port, 'lru_crawler metadump all\r\n', ends('END\r\n'), 5000);
  return reply
    .split(/\r?\n/)
    .filter((line) => line.startsWith('key='))
    .map((line) => {
      const fields = Object.fromEntries(line.split(' ').map((field) => field.split('=') as [string, string]));
      const raw = unescapeKey(fields.key!);
      return { raw, key: raw.toString(), exp: Number(fields.exp) };
    });
}

/** A counter from `stats`, over a plain socket. */
async function stat(server: ManagedServer, name: string): Promise<number> {
  const reply = await ask(server.port, 'stats\r\n', ends('END\r\n'));
  return Number(new RegExp(`STAT ${name} (\\d+)`).exec(reply)![1]);
}

/** Plain text-protocol commands on a fresh connection, as another (non-hoard) client would send. */
const classic = (server: ManagedServer, request: string, last: string) => ask(server.port, request, ends(last));

async function until(condition: () => Promise<boolean>, what: string, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await sleep(50);
  }
}

describe('MemcachedBackend', function () {
  this.timeout(30_000);
  let servers: ManagedServer[];
  const made: MemcachedBackend[] = [];
  let prefixes = 0;

  /** A backend on the given servers (default: all three) with a prefix of its own. */
  function backend(options: Partial<MemcachedBackendOptions> = {}): MemcachedBackend {
    const created = new MemcachedBackend({
      servers: servers.map((server) => server.address),
      prefix: `spec${prefixes++}:`,
      ...options,
    });
    made.push(created);
    return created;
  }

  before(async () => {
    servers = await Promise.all([startMemcached(), startMemcached(), startMemcached()]);
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((created) => created.close()));
    CacheModule.reset();
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  runBackendConformance(
    'conformance on one server',
    ({ prefix }) => new MemcachedBackend({ servers: [servers[0]!.address], prefix }),
    {
      ttlPrecision: 1,
    },
  );
  runBackendConformance(
    'conformance on three servers',
    ({ prefix }) => new MemcachedBackend({ servers: servers.map((server) => server.address), prefix }),
    { ttlPrecision: 1 },
  );

  describe('options', () => {
    it("refuses servers that are missing, not 'host:port', or listed twice", () => {
      for (const bad of [undefined, [], ['localhost'], ['127.0.0.1:0'], ['127.0.0.1:99999'], [11211], ['a:1', 'a:1']]) {
        expect(() => new MemcachedBackend({ servers: bad as never }), JSON.stringify(bad)).to.throw(TypeError, /server/);
      }
    });

    it('refuses a bad maxValueBytes, poolSize, failureThreshold, timeout or an overlong prefix', () => {
      const servers = ['127.0.0.1:1'];
      expect(() => new MemcachedBackend({ servers, maxValueBytes: 0 })).to.throw(TypeError, /maxValueBytes/);
      expect(() => new MemcachedBackend({ servers, poolSize: 1.5 })).to.throw(TypeError, /poolSize/);
      expect(() => new MemcachedBackend({ servers, failureThreshold: -1 })).to.throw(TypeError, /failureThreshold/);
      expect(() => new MemcachedBackend({ servers, timeout: 0 })).to.throw(TypeError, /timeout/);
      expect(() => new MemcachedBackend({ servers, prefix: 'p'.repeat(129) })).to.throw(TypeError, /prefix/);
    });

    it('accepts IPv6 addresses in brackets', () => {
      expect(new MemcachedBackend({ servers: ['[::1]:11311'] }).servers[0]).to.include({ host: '::1', port: 11311 });
    });
  });

  describe('keys', () => {
    const hostile = [
      'a\r\nflush_all',
      'x\r\nset victim 0 0 6\r\nhacked',
      'k\r\nmd canary\r\n',
      'k'.repeat(300),
      'é'.repeat(200),
      'with spaces and\0NUL',
      'emoji 🦄🔥',
      '',
    ];

    it('cannot inject commands: hostile keys are stored as themselves and the canary survives', async () => {
      const [server] = servers;
      await classic(server!, 'set canary 0 0 5\r\nalive\r\nset victim 0 0 8\r\noriginal\r\n', 'STORED\r\nSTORED\r\n');
      const flushesBefore = await stat(server!, 'cmd_flush');
      const cache = backend({ servers: [server!.address] });
      for (const [index, key] of hostile.entries()) await cache.set(key, `value ${index}`);
      for (const [index, key] of hostile.entries()) expect(await cache.get(key), JSON.stringify(key)).to.equal(`value ${index}`);
      expect(await cache.getMany(hostile)).to.deep.equal(hostile.map((_, index) => `value ${index}`));
      expect(await cache.get('a')).to.equal(undefined);
      expect(await classic(server!, 'get canary victim\r\n', 'END\r\n')).to.equal(
        'VALUE canary 0 5\r\nalive\r\nVALUE victim 0 8\r\noriginal\r\nEND\r\n',
      );
      expect(await stat(server!, 'cmd_flush')).to.equal(flushesBefore);
      expect(await cache.deleteMany(hostile)).to.equal(hostile.length);
      expect(await classic(server!, 'get canary\r\n', 'END\r\n')).to.equal('VALUE canary 0 5\r\nalive\r\nEND\r\n');
    });

    it('stores short keys readably under prefix and generation, long ones hashed within 250 bytes', async () => {
      const [server] = servers;
      const cache = backend({ servers: [server!.address], prefix: 'readable:' });
      await cache.set('user:1', 'short');
      await cache.set('u'.repeat(300), 'long');
      const mine = (await items(server!)).filter((item) => item.key.startsWith('readable:'));
      expect(mine.map((item) => item.key)).to.include('readable:#generation');
      const entries = mine.filter((item) => item.key !== 'readable:#generation');
      expect(entries).to.have.length(2);
      expect(entries.some((item) => /^readable:\d+:user:1$/.test(item.key))).to.equal(true);
      const hashed = entries.find((item) => /^readable:\d+#/.test(item.key))!;
      expect(hashed.raw.length).to.equal(hashed.raw.indexOf('#') + 1 + 32);
    });
  });

  describe('values', () => {
    it('rejects a value over maxValueBytes without sending it, and deletes the stale old one', async () => {
      const cache = backend({ maxValueBytes: 1000 });
      await cache.set('k', 'old');
      const error = await cache.set('k', 'x'.repeat(2000)).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheValueTooLargeError).and.to.include({ operation: 'set', key: 'k' });
      expect(await cache.has('k')).to.equal(false);
      expect(await cache.add('k', 'y'.repeat(2000)).catch((caught: unknown) => caught)).to.be.instanceOf(CacheValueTooLargeError);
      expect(await cache.has('k')).to.equal(false);
    });

    it('maps the server refusing an item to CacheValueTooLargeError, never storing a truncated value', async () => {
      const [server] = servers;
      // Serialized (JSON text: two quotes more) just under the client-side limit, but with key
      // and item header over memcached's 1 MiB item limit.
      const cache = backend({ servers: [server!.address] });
      const almost = 'x'.repeat(1024 * 1024 - 42);
      await cache.set('big', 'old');
      const error = await cache.set('big', almost).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheValueTooLargeError);
      expect(await cache.has('big')).to.equal(false);
      await cache.set('fits', Buffer.alloc(512 * 1024, 2));
      expect(await cache.get('fits')).to.deep.equal(Buffer.alloc(512 * 1024, 2));
    });

    it('stores larger values whole when the server and maxValueBytes allow them', async () => {
      const large = await startMemcached({ args: ['-I', '4m'] });
      try {
        const cache = backend({ servers: [large.address], maxValueBytes: 4 * 1024 * 1024 - 1024 });
        const value = Buffer.alloc(2 * 1024 * 1024 + 1);
        for (let i = 0; i < value.length; i++) value[i] = (i * 7919) % 251;
        await cache.set('large', value);
        expect((await cache.get('large')) as Buffer).to.deep.equal(value);
      } finally {
        await large.stop();
      }
    });

    it('setMany stores what fits, drops the oversized ones and rejects naming one', async () => {
      const cache = backend({ maxValueBytes: 1000 });
      await cache.set('huge', 'stale');
      const error = await cache.setMany({ small: 1, huge: 'x'.repeat(5000), other: 'y' }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CacheValueTooLargeError).with.property('key', 'huge');
      expect(await cache.getMany(['small', 'huge', 'other'])).to.deep.equal([1, undefined, 'y']);
    });

    it('through @Cached: an error event, and the value returned uncached', async () => {
      CacheModule.register('mc', backend({ maxValueBytes: 1000 }));
      const errors: CacheEvent[] = [];
      CacheModule.on('error', (event) => errors.push(event));
      let runs = 0;
      class Reports {
        @Cached({ backend: 'mc', ttl: 60 })
        async huge(): Promise<string> {
          runs++;
          return 'z'.repeat(5000);
        }
      }
      const reports = new Reports();
      expect(await reports.huge()).to.have.length(5000);
      expect(await reports.huge()).to.have.length(5000);
      expect(runs).to.equal(2);
      expect(errors.map((event) => event.error)).to.satisfy((list: unknown[]) =>
        list.some((error) => error instanceof CacheValueTooLargeError),
      );
      expect(errors[0]).to.include({ backend: 'mc', operation: 'set' });
    });
  });

  describe('deleteIfEquals (lock release)', () => {
    it('deletes only while the key still holds the expected string', async () => {
      const cache = backend();
      await cache.set('lock', 'token-a');
      expect(await cache.deleteIfEquals('lock', 'token-b')).to.equal(false);
      expect(await cache.get('lock')).to.equal('token-a');
      expect(await cache.deleteIfEquals('lock', 'token-a')).to.equal(true);
      expect(await cache.has('lock')).to.equal(false);
      expect(await cache.deleteIfEquals('lock', 'token-a')).to.equal(false);
      await cache.set('number', 1);
      expect(await cache.deleteIfEquals('number', '1')).to.equal(false);
    });
  });

  describe('TTL', () => {
    it('sends a TTL over 30 days as an absolute time, so the entry lives that long', async () => {
      const [server] = servers;
      const cache = backend({ servers: [server!.address], prefix: 'long-ttl:' });
      const fortyDays = 40 * 24 * 3600;
      const before = Math.floor(Date.now() / 1000);
      await cache.set('forty-days', 'v', fortyDays);
      await cache.set('ten-seconds', 'v', 10);
      await cache.set('forever', 'v', 0);
      const after = Math.ceil(Date.now() / 1000);
      expect(await cache.get('forty-days')).to.equal('v');
      const exp = Object.fromEntries(
        (await items(server!))
          .filter((item) => item.key.startsWith('long-ttl:'))
          .map((item) => [item.key.replace(/^long-ttl:\d+:/, ''), item.exp]),
      );
      expect(exp['forty-days']).to.be.within(before + fortyDays, after + fortyDays + 2);
      expect(exp['ten-seconds']).to.be.within(before + 10, after + 12);
      expect(exp['forever']).to.equal(-1);
    });

    it('keeps the TTL of an entry incremented by a fraction', async () => {
      const [server] = servers;
      const cache = backend({ servers: [server!.address], prefix: 'cas-ttl:' });
      await cache.set('f', 1.5, 3600);
      const before = (await items(server!)).find((item) => item.key.endsWith(':f'))!.exp;
      expect(await cache.increment('f', 0.25)).to.equal(1.75);
      expect(await cache.decrement('f', 2)).to.equal(-0.25);
      const after = (await items(server!)).find((item) => item.key.endsWith(':f'))!.exp;
      expect(after).to.be.within(before - 1, before);
    });
  });

  describe('clear', () => {
    it('never flushes the server, and other processes see it at once', async () => {
      const [server] = servers;
      await classic(server!, 'set foreign 0 0 4\r\nkeep\r\n', 'STORED\r\n');
      const flushes = await stat(server!, 'cmd_flush');
      const one = backend({ prefix: 'shared:' });
      const two = backend({ prefix: 'shared:' });
      await one.setMany({ a: 1, b: 2 });
      expect(await two.getMany(['a', 'b'])).to.deep.equal([1, 2]);
      await two.clear();
      expect(await one.getMany(['a', 'b'])).to.deep.equal([undefined, undefined]);
      await one.set('a', 'after');
      expect(await two.get('a')).to.equal('after');
      expect(await stat(server!, 'cmd_flush')).to.equal(flushes);
      expect(await classic(server!, 'get foreign\r\n', 'END\r\n')).to.equal('VALUE foreign 0 4\r\nkeep\r\nEND\r\n');
    });

    it('never serves old entries when the generation is lost (evicted, or a restarted server)', async () => {
      const [server] = servers;
      const cache = backend({ servers: [server!.address], prefix: 'lost:' });
      await cache.set('k', 'before');
      await classic(server!, 'delete lost:#generation\r\n', 'DELETED\r\n');
      expect(await cache.get('k')).to.equal(undefined);
      await cache.set('k', 'after');
      expect(await cache.get('k')).to.equal('after');
      const generations = (await items(server!)).filter((item) => item.key === 'lost:#generation');
      expect(generations).to.have.length(1);
    });
  });

  describe('several servers', () => {
    const keys = Array.from({ length: 300 }, (_, i) => `item:${i}`);

    /** How many of this prefix's entries each server holds. */
    async function spread(prefix: string): Promise<number[]> {
      return Promise.all(
        servers.map(
          async (server) =>
            (await items(server)).filter((item) => item.key.startsWith(prefix) && !item.key.endsWith('#generation')).length,
        ),
      );
    }

    it('spreads keys over every server, each key on exactly one', async () => {
      const cache = backend({ prefix: 'spread:' });
      await cache.setMany(keys.map((key) => [key, key] as const));
      const counts = await spread('spread:');
      expect(counts.reduce((sum, count) => sum + count)).to.equal(keys.length);
      for (const count of counts) expect(count).to.be.within(40, 180);
      expect(await cache.getMany(keys)).to.deep.equal(keys);
    });

    describe('when one fails', () => {
      /** Restart or resume whatever a spec broke, so the next spec finds three live servers. */
      let broken: (() => Promise<void> | void) | undefined;
      afterEach(async () => {
        await broken?.();
        broken = undefined;
      });

      it('keeps caching on the others when one is killed, and uses it again once it is back', async () => {
        const victim = servers[1]!;
        const cache = backend({ prefix: 'failover:', timeout: 0.3 });
        await cache.setMany(keys.map((key) => [key, key] as const));
        const before = await spread('failover:');
        await victim.kill();
        broken = () => victim.restart();

        // Failures on the dead server's keys until it is taken out of the ring; never a wrong value.
        const failures: unknown[] = [];
        for (const key of keys) {
          const value = await cache.get(key).catch((error: unknown) => failures.push(error));
          if (typeof value === 'string') expect(value).to.equal(key);
        }
        expect(failures.length).to.be.within(1, 2);
        expect(failures.every((error) => error instanceof CacheBackendError)).to.equal(true);

        // Out of the ring: every key works, the dead server's keys now cached on the other two.
        await cache.setMany(keys.map((key) => [key, `${key}!`] as const));
        expect(await cache.getMany(keys)).to.deep.equal(keys.map((key) => `${key}!`));
        const during = await Promise.all([servers[0]!, servers[2]!].map((server) => items(server)));
        expect(
          during.flat().filter((item) => item.key.startsWith('failover:') && !item.key.endsWith('#generation')).length,
        ).to.be.at.least(keys.length);

        await victim.restart();
        broken = undefined;
        await until(async () => {
          await cache.setMany(keys.map((key) => [`again:${key}`, 1] as const));
          return (await spread('failover:'))[1]! > 0;
        }, 'the restarted server is used again');
        await cache.setMany(keys.map((key) => [key, `${key}?`] as const));
        expect(await cache.getMany(keys)).to.deep.equal(keys.map((key) => `${key}?`));
        expect((await spread('failover:'))[1]).to.be.at.least(before[1]! / 2);
      });

      it('fails fast within the timeout on a hung server, then routes around it until it answers', async () => {
        const victim = servers[2]!;
        const cache = backend({ prefix: 'hung:', timeout: 0.2 });
        const owned: string[] = [];
        await cache.setMany(keys.map((key) => [key, key] as const));
        await victim.pause();
        broken = () => victim.resume();
        for (const key of keys) {
          const error = await cache.get(key).then(
            () => undefined,
            (caught: unknown) => caught,
          );
          if (error !== undefined) {
            owned.push(key);
            // Timed out; or, sent while the server was being taken out, failed at once.
            expect(error)
              .to.be.instanceOf(CacheBackendError)
              .with.property('message')
              .that.matches(/no answer within|is down/);
          }
        }
        expect(owned.length).to.be.within(1, 3);
        await cache.set(owned[0]!, 'elsewhere');
        expect(await cache.get(owned[0]!)).to.equal('elsewhere');
        victim.resume();
        broken = undefined;
        await until(async () => {
          await cache.setMany(keys.map((key) => [`again:${key}`, 1] as const));
          return (await items(victim)).some((item) => /^hung:\d+:again:/.test(item.key));
        }, 'the resumed server is used again');
      });

      it('keeps decorated calls correct while a server is down, reporting error events', async () => {
        const victim = servers[0]!;
        CacheModule.register('mc', backend({ prefix: 'decorated:', timeout: 0.3 }));
        const errors: CacheEvent[] = [];
        CacheModule.on('error', (event) => errors.push(event));
        const runs = new Map<number, number>();
        class Prices {
          @Cached({ backend: 'mc', ttl: 60 })
          async price(id: number): Promise<number> {
            runs.set(id, (runs.get(id) ?? 0) + 1);
            return id * 10;
          }
        }
        const prices = new Prices();
        const ids = Array.from({ length: 60 }, (_, i) => i);
        for (const id of ids) expect(await prices.price(id)).to.equal(id * 10);
        await victim.kill();
        broken = () => victim.restart();
        for (let round = 0; round < 3; round++) {
          for (const id of ids) expect(await prices.price(id)).to.equal(id * 10);
        }
        expect(errors.length).to.be.at.least(1);
        expect(errors[0]).to.include({ backend: 'mc' });
        expect(errors[0]!.error).to.be.instanceOf(CacheBackendError);
        // The dead server's keys were recomputed, then cached elsewhere. Keys on the live servers
        // stayed hits, unless the method's generation record was on the dead one: then every
        // entry missed once, as losing a record must make it (SPEC §12).
        const recomputed = ids.filter((id) => runs.get(id)! > 1);
        expect(recomputed.length).to.be.within(1, ids.length);
        expect(recomputed.every((id) => runs.get(id)! <= 3)).to.equal(true);
        const settled = new Map(runs);
        for (const id of ids) expect(await prices.price(id)).to.equal(id * 10);
        expect(runs).to.deep.equal(settled);
      });
    });
  });
});
