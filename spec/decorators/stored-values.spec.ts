import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  Cached,
  CacheIntegrityError,
  CacheModule,
  CacheSerializationError,
  defaultSerializer,
  RedisBackend,
  type CacheEvent,
  type RemoteBackendOptions,
} from 'hoard';
import { flavour } from '../support/flavour.js';
import { rawRedis, remoteKinds, type RawEntries } from '../support/raw-entries.js';
import { startMemcached, startRedis, type ManagedServer, type RedisServer } from '../support/servers.js';

/**
 * Someone with write access to the shared server but without the keys changes hoard's stored
 * bytes: each change is a miss plus an `error` event, the method's value is returned and replaces
 * the entry. Real servers; the tampering goes through a client of its own.
 */
describe(`stored values: integrity, encryption and compression through @Cached [${flavour} decorators]`, function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let memcached: ManagedServer;
  let run = 0;

  before(async () => {
    [redis, memcached] = await Promise.all([startRedis(), startMemcached()]);
  });
  after(() => Promise.all([redis.stop(), memcached.stop()]));

  const current = randomBytes(32);
  const stranger = randomBytes(32);

  const servers = remoteKinds(
    () => redis,
    () => memcached,
  );
  const protections: [string, (keys: Buffer[]) => RemoteBackendOptions][] = [
    ['integrity', (keys) => ({ integrity: { keys } })],
    ['encryption and compression', (keys) => ({ encryption: { keys }, compression: { threshold: 0 } })],
  ];

  /** What the method returns: big enough to be compressed, and each computation tells itself apart. */
  function permissionsOf(user: string, computation: number) {
    return { user, role: 'reader', computation, grants: Array.from({ length: 50 }, (_, i) => `document:${i}`) };
  }

  for (const server of servers) {
    for (const [protection, options] of protections) {
      describe(`${server.name} with ${protection}`, () => {
        let prefix: string;
        let raw: RawEntries;
        let errors: CacheEvent[];
        let computations: number;

        class Access {
          @Cached({ ttl: 60, key: (user: string) => `permissions:${user}` })
          async permissionsFor(user: string) {
            return permissionsOf(user, ++computations);
          }
        }

        beforeEach(() => {
          CacheModule.reset();
          prefix = `stored${run++}:`;
          CacheModule.register(server.backend(prefix, options([current])));
          raw = server.raw(prefix);
          errors = [];
          computations = 0;
          CacheModule.on('error', (event) => errors.push(event));
        });
        afterEach(async () => {
          await raw.close();
          await CacheModule.close();
        });

        /** After the change, one call computes and reports `reason`; the one after it is a hit. */
        async function expectRefused(access: Access, user: string, reason: string): Promise<void> {
          const before = computations;
          expect(await access.permissionsFor(user)).to.deep.equal(permissionsOf(user, before + 1));
          expect(errors.map((event) => [event.key, event.operation, (event.error as CacheIntegrityError).reason])).to.deep.equal([
            [`permissions:${user}`, 'get', reason],
          ]);
          const error = errors[0]!.error as CacheIntegrityError;
          expect(error).to.be.instanceOf(CacheIntegrityError).and.instanceOf(CacheSerializationError);
          expect(error.code).to.equal('HOARD_INTEGRITY');
          expect(error.message).to.include(`permissions:${user}`);
          // The fresh value replaced the refused entry.
          expect(await access.permissionsFor(user)).to.deep.equal(permissionsOf(user, before + 1));
          expect(computations).to.equal(before + 1);
        }

        it('serves a genuine entry, and stores nothing readable as plain JSON', async () => {
          const access = new Access();
          await access.permissionsFor('alice');
          expect(await access.permissionsFor('alice')).to.deep.equal(permissionsOf('alice', 1));
          expect(computations).to.equal(1);
          const stored = (await raw.read('permissions:alice'))!;
          expect(stored.includes(Buffer.from('"role"'))).to.equal(protection === 'integrity');
          expect(errors).to.deep.equal([]);
        });

        it('refuses an entry with one bit flipped, wherever it is', async () => {
          const access = new Access();
          await access.permissionsFor('alice');
          const stored = (await raw.read('permissions:alice'))!;
          for (const at of [0, 4, 5, 9, 20, stored.length - 1]) {
            const flipped = Buffer.from(stored);
            flipped[at]! ^= 0x01;
            await raw.write('permissions:alice', flipped);
            errors = [];
            // Byte 0 is the magic (then it reads as a plain entry), bytes 5 to 8 the key's fingerprint.
            await expectRefused(access, 'alice', at === 0 ? 'unsigned' : at === 5 ? 'unknown-key' : 'tampered');
          }
        });

        it('refuses a truncated entry', async () => {
          const access = new Access();
          await access.permissionsFor('alice');
          const stored = (await raw.read('permissions:alice'))!;
          await raw.write('permissions:alice', stored.subarray(0, stored.length - 3));
          await expectRefused(access, 'alice', 'tampered');
          await raw.write('permissions:alice', stored.subarray(0, 20));
          errors = [];
          await expectRefused(access, 'alice', 'malformed');
        });

        it("refuses entries swapped between two keys (alice's permissions served for mallory)", async () => {
          const access = new Access();
          await access.permissionsFor('alice');
          await access.permissionsFor('mallory');
          const alice = (await raw.read('permissions:alice'))!;
          await raw.write('permissions:mallory', alice);
          await expectRefused(access, 'mallory', 'tampered');
        });

        it('refuses a plain unsigned value, and a number stored the way counters are', async () => {
          const access = new Access();
          await access.permissionsFor('alice');
          await raw.write('permissions:mallory', defaultSerializer.serialize({ user: 'mallory', role: 'admin' }));
          await expectRefused(access, 'mallory', 'unsigned');
          // Memcached's client flags 0 mark a counter, which hoard otherwise reads as a number.
          await raw.write('permissions:mallory', '7', 0);
          errors = [];
          await expectRefused(access, 'mallory', 'unsigned');
        });

        it('refuses a value signed with a key it does not hold', async () => {
          const access = new Access();
          const forger = server.backend(prefix, options([stranger]));
          try {
            await forger.set('permissions:mallory', { user: 'mallory', role: 'admin' }, 60);
          } finally {
            await forger.close();
          }
          await expectRefused(access, 'mallory', 'unknown-key');
        });
      });
    }
  }

  describe('compression alone', () => {
    it('a corrupted compressed entry is a miss and an error event; the fresh value replaces it', async () => {
      CacheModule.reset();
      const prefix = `stored${run++}:`;
      CacheModule.register(new RedisBackend({ url: redis.url, prefix, compression: { threshold: 0 } }));
      const raw = rawRedis(redis, prefix);
      const errors: CacheEvent[] = [];
      CacheModule.on('error', (event) => errors.push(event));
      let computations = 0;
      class Access {
        @Cached({ ttl: 60, key: (user: string) => `permissions:${user}` })
        async permissionsFor(user: string) {
          return permissionsOf(user, ++computations);
        }
      }
      try {
        const access = new Access();
        await access.permissionsFor('alice');
        const stored = (await raw.read('permissions:alice'))!;
        const corrupted = Buffer.from(stored);
        corrupted[corrupted.length >> 1]! ^= 0xff;
        await raw.write('permissions:alice', corrupted);
        expect(await access.permissionsFor('alice')).to.deep.equal(permissionsOf('alice', 2));
        expect(errors).to.have.length(1);
        expect(errors[0]!.error).to.be.instanceOf(CacheSerializationError);
        expect((errors[0]!.error as Error).message).to.match(/cannot be decompressed \(gzip\)/);
        expect(await access.permissionsFor('alice')).to.deep.equal(permissionsOf('alice', 2));
      } finally {
        await raw.close();
        await CacheModule.close();
      }
    });
  });
});
