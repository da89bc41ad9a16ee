import { expect } from 'chai';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { cached, CacheModule, MemoryBackend, RedisBackend, RedisBus, TieredBackend } from 'hoard';
import { startRedis, type RedisServer } from '../support/servers.js';
import { recordingListener, waitFor } from './tiered/support.js';

/**
 * One UTF-16 code unit or code point, weighted toward what merges or looks alike on the way to
 * bytes: lone surrogates (UTF-8 turns each into U+FFFD), U+FFFD itself, the code points beside
 * the surrogate range, and the Latin-1 characters whose code points equal the bytes of an
 * encoded surrogate (ED A0 80).
 */
const unit = fc.oneof(
  fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
  fc.constantFrom('\uFFFD', '\uD7FF', '\uE000', '\u00ED', '\u00A0', '\u0080', '\u00BF', '\0', '*', '\uD83D\uDE00'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
const anyKey = fc.string({ unit, maxLength: 8 });

describe('RedisBackend keys are byte-exact', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  afterEach(async () => {
    CacheModule.reset();
    await raw.flushdb();
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  it('keeps any distinct key strings apart, lone surrogates included, through set, lookup, getMany, delete and clear', async () => {
    // A generous timeout: this spec is about keys, not about a loaded machine's latency.
    const backend = new RedisBackend({ url: redis.url, prefix: 'p:', timeout: 10 });
    try {
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(anyKey, { minLength: 2, maxLength: 12 }), async (keys) => {
          await raw.flushdb();
          await backend.setMany(keys.map((key, index) => [key, index] as const));
          expect(await raw.dbsize()).to.equal(keys.length);
          for (const [index, key] of keys.entries()) expect(await backend.lookup(key)).to.equal(index);
          expect(await backend.getMany(keys)).to.deep.equal(keys.map((_, index) => index));
          expect(await backend.delete(keys[0]!)).to.equal(true);
          expect(await backend.has(keys[1]!)).to.equal(true);
          await backend.clear();
          expect(await raw.dbsize()).to.equal(0);
        }),
        { numRuns: 300 },
      );
    } finally {
      await backend.close();
    }
  });

  it('stores a well-formed key as its UTF-8, as before, and a lone surrogate as bytes UTF-8 never has', async () => {
    const backend = new RedisBackend({ url: redis.url, prefix: 'p:' });
    try {
      await backend.set('caf\u00E9', 1);
      await backend.set('a\uD800', 2);
      await backend.set('a\uFFFD', 3);
      const stored = (await raw.keysBuffer('*')).map((key) => key.toString('hex')).sort();
      expect(stored).to.deep.equal(
        [
          Buffer.from('p:a').toString('hex') + 'eda080',
          Buffer.from('p:a\uFFFD').toString('hex'),
          Buffer.from('p:caf\u00E9').toString('hex'),
        ].sort(),
      );
    } finally {
      await backend.close();
    }
  });

  it("serves the user named '\\uD800' its own entry, not that of the user named '\\uFFFD'", async () => {
    const backend = new RedisBackend({ url: redis.url, prefix: 'p:' });
    CacheModule.register(backend);
    const getUser = cached(async (name: string) => `profile of ${name}`, {
      name: 'getUser',
      key: (name: string) => `user:${name}`,
    });
    expect(await getUser('\uFFFD')).to.equal('profile of \uFFFD');
    expect(await getUser('\uD800')).to.equal('profile of \uD800');
    expect(await getUser('\uFFFD')).to.equal('profile of \uFFFD');
    await CacheModule.close();
  });

  it('refuses a prefix with a lone surrogate, which could pair with a key and hide it from clear()', () => {
    expect(() => new RedisBackend({ url: redis.url, prefix: 'p\uD800', lazyConnect: true })).to.throw(TypeError, /prefix/);
  });

  it('a tiered backend and its bus keep such keys apart too: the other process drops exactly the key written', async () => {
    const tier = () => {
      const l1 = new MemoryBackend();
      const bus = new RedisBus({ url: redis.url, channel: 'keys-spec' });
      return { l1, bus, tiered: new TieredBackend({ l1, l2: new RedisBackend({ url: redis.url, prefix: 'p:' }), bus }) };
    };
    const a = tier();
    const b = tier();
    try {
      await waitFor('both buses subscribed', () => a.bus.connected && b.bus.connected, 5000);
      await a.tiered.set('k\uD800', 'lone');
      await a.tiered.set('k\uFFFD', 'replacement');
      expect(await b.tiered.get('k\uD800')).to.equal('lone');
      expect(await b.tiered.get('k\uFFFD')).to.equal('replacement');
      const heard = recordingListener();
      const watcher = new RedisBus({ url: redis.url, channel: 'keys-spec' });
      watcher.listen(heard);
      await waitFor('the watcher subscribed', () => watcher.connected, 5000);
      await a.tiered.set('k\uD800', 'lone, again');
      await waitFor('the message arrived', () => heard.received.length === 1);
      expect(heard.received).to.deep.equal([{ keys: ['k\uD800'] }]);
      await watcher.close();
      expect(b.l1.has('k\uD800')).to.equal(false);
      expect(b.l1.has('k\uFFFD')).to.equal(true);
      expect(await b.tiered.get('k\uD800')).to.equal('lone, again');
      expect(await b.tiered.get('k\uFFFD')).to.equal('replacement');
    } finally {
      await Promise.all([a.tiered.close(), b.tiered.close()]);
    }
  });
});
