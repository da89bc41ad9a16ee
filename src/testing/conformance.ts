import assert from 'node:assert/strict';
import { MISS, type CacheBackend } from '../backends/backend.js';
import { Cached } from '../decorators/cached.js';
import { CacheArgumentError } from '../errors.js';
import { generationKey, tagKey } from '../module/keyspace.js';
import { CacheModule } from '../cache-module.js';
import { moduleConfig } from '../module/config.js';
import { cached } from '../decorators/cached-function.js';

/** What the suite asks of the backend under test. */
export interface ConformanceContext {
  /**
   * A prefix unique to this backend instance. Backends that share storage between instances
   * (a server) must apply it, so that instances with different prefixes do not see each other's
   * entries and `clear()` removes only this instance's.
   */
  prefix: string;
}

/**
 * Makes a fresh backend for one test. The suite closes every backend it made after each test
 * (after `clear()`, so a shared server is left as it was found).
 */
export type BackendFactory = (context: ConformanceContext) => CacheBackend | Promise<CacheBackend>;

/** How the backend under test differs from the defaults the suite assumes. */
export interface ConformanceOptions {
  /**
   * The coarsest TTL the backend stores, in seconds: memcached counts whole seconds, so `1`.
   * The TTL tests then use that as their short TTL. Default 0.001 (milliseconds, like Redis).
   */
  ttlPrecision?: number;
  /**
   * The test runner's functions the suite declares its tests with. Default: the `describe`, `it`
   * and `afterEach` globals that mocha, Jest and Vitest (with `globals: true`) define. Under
   * `node:test` pass `{ describe, it, afterEach }` from `node:test`; under Vitest without globals,
   * the same three from `vitest`.
   */
  test?: TestFunctions;
}

/**
 * The three functions of a BDD test runner the suite needs; mocha's, node:test's, Jest's and
 * Vitest's all fit. A test body may take longer than a runner's default timeout only where the
 * runner lets it say so (mocha's `this.timeout`); the longest waits a few seconds.
 */
export interface TestFunctions {
  /** Declares a group of tests; `body` declares them, synchronously. */
  describe(title: string, body: () => void): unknown;
  /** Declares one test; the runner awaits `body`. */
  it(title: string, body: () => Promise<void>): unknown;
  /** Runs `body` after each test of the enclosing group (the suite closes its backends there). */
  afterEach(body: () => Promise<void>): unknown;
}

function testFunctions(given: TestFunctions | undefined): TestFunctions {
  const functions = (given ?? globalThis) as Partial<TestFunctions>;
  if (
    typeof functions.describe !== 'function' ||
    typeof functions.it !== 'function' ||
    typeof functions.afterEach !== 'function'
  ) {
    throw new CacheArgumentError(
      'runBackendConformance: no describe, it and afterEach to declare tests with. Call it while mocha, Jest or ' +
        "Vitest (globals) loads a spec file, or pass them: { test: { describe, it, afterEach } } from 'node:test' or 'vitest'",
    );
  }
  return functions as TestFunctions;
}

/** Gives a slow test more time where the runner lets a test body say so (mocha); elsewhere a no-op. */
function allow(test: unknown, ms: number): void {
  (test as { timeout?: (ms: number) => void } | undefined)?.timeout?.(ms);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Values the default serializer promises to round-trip (SPEC §6), including ones that look like its tags. */
const conformanceValues: Readonly<Record<string, unknown>> = Object.freeze({
  'an empty string': '',
  'a unicode string': 'naïve café ✓ 𝄞',
  'a string of digits': '42',
  zero: 0,
  'a negative fraction': -1.5,
  'a large number': 1e21,
  'the largest safe integer': Number.MAX_SAFE_INTEGER,
  true: true,
  false: false,
  null: null,
  undefined: undefined,
  'an empty object': {},
  'an empty array': [],
  'nested plain data': { user: { id: 7, roles: ['admin', 'dev'], active: true, manager: null } },
  'a Date': new Date('2024-02-29T12:34:56.789Z'),
  'a BigInt': 12345678901234567890n,
  'a Map with mixed keys': new Map<unknown, unknown>([
    ['a', 1],
    [2, 'b'],
    [null, [1]],
  ]),
  'a Set': new Set(['x', 1, null]),
  'a Buffer': Buffer.from([0, 1, 2, 253, 254, 255]),
  'a Uint8Array': new Uint8Array([9, 8, 7]),
  'undefined inside an object and an array': { a: undefined, list: [1, undefined, 3] },
  'a mix nested in each other': { when: new Date(0), tags: new Set([new Map([['k', 1n]])]), bytes: [Buffer.from('hi')] },
  'an object shaped like a type tag': { '~': 'Date', v: 0 },
  'an object with __proto__ and constructor keys': JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":1}}'),
});

/** Keys with characters that protocols treat specially: each must reach exactly its own entry. */
const awkwardKeys = ['with space', 'line\r\nbreak', 'tab\tand\0nul', 'ünïcødé ✓', 'glob*?[chars]\\', 'x'.repeat(300)];

/**
 * The behaviour every `CacheBackend` owes (docs/backends.md, "Writing a backend"): the whole
 * BaseCache-shaped API, TTLs, the module's `defaultTtl` handed down by `register`, prefix
 * isolation, value round-trips, and `@Cached` on top of it. Call it where the test runner loads a
 * spec file (see {@link ConformanceOptions.test}); start servers in your own hooks around it.
 *
 * ```ts
 * describe('MyBackend', () => {
 *   let server: MyServer;
 *   before(async () => (server = await startMyServer()));
 *   after(() => server.stop());
 *   runBackendConformance('conformance', ({ prefix }) => new MyBackend({ address: server.address, prefix }));
 * });
 * ```
 */
export function runBackendConformance(describeName: string, factory: BackendFactory, options: ConformanceOptions = {}): void {
  const { describe, it, afterEach } = testFunctions(options.test);
  const precision = options.ttlPrecision ?? 0.001;
  /** Short enough to wait for, long enough to read the entry back before it expires. */
  const shortTtl = Math.max(0.3, precision);
  /** Past the short TTL whatever the backend's rounding. */
  const expiryWaitMs = Math.ceil((shortTtl + precision) * 1000) + 200;

  describe(describeName, () => {
    const made: CacheBackend[] = [];
    let instances = 0;
    const runId = `${process.pid}-${Date.now().toString(36)}`;

    /** A new backend; a given `prefix` lets two instances share one, else each gets its own. */
    async function make(prefix = `hoard-conformance:${runId}:${instances}:`): Promise<CacheBackend> {
      instances++;
      const backend = await factory({ prefix });
      made.push(backend);
      return backend;
    }

    let registrations = 0;
    const names: string[] = [];

    /** Registers a fresh backend under a name of its own, as an application would, and returns the name. */
    async function registered(): Promise<string> {
      const name = `conformance-${runId}-${registrations++}`;
      CacheModule.register(name, await make());
      names.push(name);
      return name;
    }

    // Unregistered and closed after each test: what later tests invalidate must not reach them.
    afterEach(async () => {
      for (const name of names.splice(0)) CacheModule.unregister(name);
      const backends = made.splice(0);
      for (const backend of backends) await backend.clear();
      for (const backend of backends) await backend.close();
    });

    describe('get, lookup, set, has', () => {
      it('misses a key that was never set', async () => {
        const cache = await make();
        assert.equal(await cache.get('absent'), undefined);
        assert.equal(await cache.lookup('absent'), MISS);
        assert.equal(await cache.has('absent'), false);
      });

      it('returns what was set, and the latest value after an overwrite', async () => {
        const cache = await make();
        await cache.set('k', { n: 1 });
        assert.deepEqual(await cache.get('k'), { n: 1 });
        assert.equal(await cache.has('k'), true);
        await cache.set('k', 'second');
        assert.equal(await cache.get('k'), 'second');
      });

      it('tells a stored undefined from a miss, and stores null', async () => {
        const cache = await make();
        await cache.set('u', undefined);
        await cache.set('n', null);
        assert.equal(await cache.lookup('u'), undefined);
        assert.equal(await cache.has('u'), true);
        assert.equal(await cache.get('n'), null);
        assert.equal(await cache.lookup('n'), null);
      });

      it('keeps keys with spaces, control characters, globs, unicode and great length apart', async () => {
        const cache = await make();
        for (const [index, key] of awkwardKeys.entries()) await cache.set(key, index);
        for (const [index, key] of awkwardKeys.entries()) assert.equal(await cache.get(key), index, `key ${JSON.stringify(key)}`);
        assert.equal(await cache.get('with'), undefined);
        assert.equal(await cache.get('x'.repeat(299)), undefined);
      });

      it('rejects a negative or non-finite ttl, and one above the 2^31 − 1 seconds every backend stores', async () => {
        const cache = await make();
        await assert.rejects(async () => cache.set('k', 1, -1), TypeError);
        await assert.rejects(async () => cache.set('k', 1, NaN), TypeError);
        await assert.rejects(async () => cache.set('k', 1, 1e16), TypeError);
        await assert.rejects(async () => cache.add('k', 1, 2 ** 31), TypeError);
        assert.equal(await cache.has('k'), false);
        await cache.set('k', 1, 2 ** 31 - 1);
        assert.equal(await cache.get('k'), 1);
      });
    });

    describe('value round-trips', () => {
      for (const [name, value] of Object.entries(conformanceValues)) {
        it(`round-trips ${name}`, async () => {
          const cache = await make();
          await cache.set('value', value);
          const back = await cache.get('value');
          assert.deepStrictEqual(back, value);
          assert.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype was polluted');
        });
      }
    });

    describe('add', () => {
      it('stores only when the key is absent, and says whether it did', async () => {
        const cache = await make();
        assert.equal(await cache.add('k', 'first'), true);
        assert.equal(await cache.add('k', 'second'), false);
        assert.equal(await cache.get('k'), 'first');
      });

      it('treats a stored undefined as present', async () => {
        const cache = await make();
        await cache.set('k', undefined);
        assert.equal(await cache.add('k', 'other'), false);
        assert.equal(await cache.lookup('k'), undefined);
      });
    });

    describe('delete and deleteMany', () => {
      it('delete says whether the key existed', async () => {
        const cache = await make();
        await cache.set('k', 1);
        assert.equal(await cache.delete('k'), true);
        assert.equal(await cache.has('k'), false);
        assert.equal(await cache.delete('k'), false);
      });

      it('deleteIfEquals, where offered, deletes only an entry holding that string', async () => {
        const cache = await make();
        await cache.set('lock', 'token-1');
        if (cache.deleteIfEquals === undefined) {
          // Optional: lock release then reads the token back with get, so it must round-trip.
          assert.equal(await cache.get('lock'), 'token-1');
          return;
        }
        assert.equal(await cache.deleteIfEquals('lock', 'token-2'), false);
        assert.equal(await cache.get('lock'), 'token-1');
        assert.equal(await cache.deleteIfEquals('lock', 'token-1'), true);
        assert.equal(await cache.has('lock'), false);
        assert.equal(await cache.deleteIfEquals('lock', 'token-1'), false);
      });

      it('lookupWithTtl, where offered, tells the value and the seconds it has left', async () => {
        const cache = await make();
        await cache.set('timed', { n: 1 }, 100);
        await cache.set('forever', undefined, 0);
        if (cache.lookupWithTtl === undefined) {
          // Optional: a tiered backend over this one then falls back to lookup and its own l1Ttl.
          assert.deepEqual(await cache.lookup('timed'), { n: 1 });
          return;
        }
        const timed = await cache.lookupWithTtl('timed');
        assert.notEqual(timed, MISS);
        const { value, ttl } = timed as { value: unknown; ttl: number };
        assert.deepEqual(value, { n: 1 });
        assert.ok(ttl > 90 && ttl <= 100, `remaining ttl ${ttl} should be within (90, 100]`);
        assert.deepEqual(await cache.lookupWithTtl('forever'), { value: undefined, ttl: 0 });
        assert.equal(await cache.lookupWithTtl('absent'), MISS);
      });

      it('deleteMany deletes the given keys and counts those that existed', async () => {
        const cache = await make();
        await cache.setMany({ a: 1, b: 2, c: 3 });
        assert.equal(await cache.deleteMany(['a', 'c', 'missing']), 2);
        assert.deepEqual(await cache.getMany(['a', 'b', 'c']), [undefined, 2, undefined]);
        assert.equal(await cache.deleteMany([]), 0);
      });
    });

    describe('getMany and setMany', () => {
      it('getMany aligns values with keys, undefined for misses and duplicates answered twice', async () => {
        const cache = await make();
        await cache.set('a', 'A');
        await cache.set('n', null);
        assert.deepEqual(await cache.getMany(['a', 'missing', 'n', 'a']), ['A', undefined, null, 'A']);
        assert.deepEqual(await cache.getMany([]), []);
      });

      it('setMany takes a Map, an iterable of pairs and a plain object', async () => {
        const cache = await make();
        await cache.setMany(
          new Map<string, unknown>([
            ['m1', 1],
            ['m2', new Date(5)],
          ]),
        );
        await cache.setMany([
          ['p1', 'one'],
          ['p2', [2]],
        ]);
        await cache.setMany(
          (function* () {
            yield ['g1', { g: true }] as const;
          })(),
        );
        await cache.setMany({ o1: null, o2: undefined });
        assert.deepEqual(await cache.getMany(['m1', 'm2', 'p1', 'p2', 'g1', 'o1']), [
          1,
          new Date(5),
          'one',
          [2],
          { g: true },
          null,
        ]);
        assert.equal(await cache.has('o2'), true);
      });
    });

    describe('increment and decrement', () => {
      it('starts a missing key at 0 and returns each new number', async () => {
        const cache = await make();
        assert.equal(await cache.increment('hits'), 1);
        assert.equal(await cache.increment('hits', 5), 6);
        assert.equal(await cache.decrement('hits'), 5);
        assert.equal(await cache.decrement('hits', 7), -2);
        assert.equal(await cache.decrement('fresh'), -1);
        assert.equal(await cache.get('hits'), -2);
      });

      it('adds fractions like JavaScript does', async () => {
        const cache = await make();
        assert.equal(await cache.increment('f', 0.1), 0.1);
        assert.equal(await cache.increment('f', 0.2), 0.1 + 0.2);
        assert.equal(await cache.get('f'), 0.1 + 0.2);
      });

      it('increments a number stored by set', async () => {
        const cache = await make();
        await cache.set('n', 41);
        assert.equal(await cache.increment('n'), 42);
        assert.equal(await cache.get('n'), 42);
      });

      it('refuses to increment something that is not a number, leaving it unchanged', async () => {
        const cache = await make();
        await cache.set('s', 'text');
        await assert.rejects(async () => cache.increment('s'));
        assert.equal(await cache.get('s'), 'text');
      });

      it('loses no update under concurrent increments', async () => {
        const cache = await make();
        await Promise.all(Array.from({ length: 50 }, async () => cache.increment('c')));
        assert.equal(await cache.get('c'), 50);
      });
    });

    describe('TTL', () => {
      it('expires entries after their ttl and keeps ttl 0 forever', async function (this: unknown) {
        allow(this, expiryWaitMs + 10_000);
        const cache = await make();
        await cache.set('short', 'value', shortTtl);
        await cache.set('forever', 'value', 0);
        await cache.setMany({ many: 1 }, shortTtl);
        assert.equal(await cache.add('added', 'value', shortTtl), true);
        await cache.set('counter', 10, shortTtl);
        assert.equal(await cache.increment('counter'), 11);
        assert.deepEqual(await cache.getMany(['short', 'many', 'added']), ['value', 1, 'value']);
        await sleep(expiryWaitMs);
        assert.equal(await cache.get('short'), undefined);
        assert.equal(await cache.has('short'), false);
        assert.deepEqual(await cache.getMany(['short', 'many', 'added']), [undefined, undefined, undefined]);
        assert.equal(await cache.get('counter'), undefined, 'increment kept the TTL of the existing entry');
        assert.equal(await cache.get('forever'), 'value');
        assert.equal(await cache.add('added', 'again'), true, 'an expired key can be added again');
      });

      it("uses the module's defaultTtl, handed down by register, for set and for a counter it creates", async function (this: unknown) {
        allow(this, expiryWaitMs + 10_000);
        const previous = moduleConfig().defaultTtl;
        const cache = CacheModule.get(await registered());
        // After register, so that the backend must read the context live, not copy it once.
        CacheModule.configure({ defaultTtl: shortTtl });
        try {
          await cache.set('default', 'value');
          await cache.increment('counter');
          assert.equal(await cache.get('default'), 'value');
          await sleep(expiryWaitMs);
          assert.equal(await cache.get('default'), undefined);
          assert.equal(await cache.get('counter'), undefined);
        } finally {
          CacheModule.configure({ defaultTtl: previous });
        }
      });
    });

    describe('prefix isolation and clear', () => {
      it('keeps instances with different prefixes apart', async () => {
        const mine = await make();
        const theirs = await make();
        await mine.set('shared-name', 'mine');
        await theirs.set('shared-name', 'theirs');
        assert.equal(await mine.get('shared-name'), 'mine');
        assert.equal(await theirs.get('shared-name'), 'theirs');
        assert.equal(await mine.delete('shared-name'), true);
        assert.equal(await theirs.get('shared-name'), 'theirs');
      });

      it("clear removes this instance's entries only", async () => {
        const mine = await make();
        const theirs = await make();
        await mine.setMany({ a: 1, b: undefined, c: 3 });
        await theirs.set('a', 'kept');
        await mine.clear();
        assert.deepEqual(await mine.getMany(['a', 'c']), [undefined, undefined]);
        assert.equal(await mine.has('b'), false);
        assert.equal(await theirs.get('a'), 'kept');
        await mine.set('a', 'after clear');
        assert.equal(await mine.get('a'), 'after clear');
      });
    });

    describe('under @Cached', () => {
      it('runs the body once, then serves hits, null and undefined included', async () => {
        const backend = await registered();
        let runs = 0;
        class Service {
          @Cached({ backend, ttl: 60 })
          async load(id: number): Promise<unknown> {
            runs++;
            return id === 0 ? undefined : id === 1 ? null : { id, at: new Date(id) };
          }
        }
        const service = new Service();
        for (const id of [0, 1, 2]) {
          const first = await service.load(id);
          assert.deepEqual(await service.load(id), first);
        }
        assert.equal(runs, 3);
        assert.deepEqual(await service.load(2), { id: 2, at: new Date(2) });
      });

      it('never caches an error: the caller gets it and the next call runs again', async () => {
        const backend = await registered();
        const failure = new Error('upstream down');
        let runs = 0;
        class Service {
          @Cached({ backend, ttl: 60 })
          async load(): Promise<string> {
            runs++;
            if (runs === 1) throw failure;
            return 'recovered';
          }
        }
        const service = new Service();
        await assert.rejects(service.load(), (error) => error === failure);
        assert.equal(await service.load(), 'recovered');
        assert.equal(await service.load(), 'recovered');
        assert.equal(runs, 2);
      });

      it('shares one invocation among concurrent callers of one key', async () => {
        const backend = await registered();
        let runs = 0;
        class Service {
          @Cached({ backend, ttl: 60 })
          async slow(id: string): Promise<string> {
            runs++;
            await sleep(50);
            return `value of ${id}`;
          }
        }
        const service = new Service();
        const results = await Promise.all(Array.from({ length: 20 }, () => service.slow('k')));
        assert.deepEqual(new Set(results), new Set(['value of k']));
        assert.equal(runs, 1);
      });

      // A server may lose any record hoard keeps for itself (an LRU eviction, a failover, a flush):
      // here it is deleted directly, as that would.
      it('never brings invalidated entries back when a method generation record is lost', async () => {
        const backend = await registered();
        let version = 1;
        /** A class of its own per call: a second one stands for another process reading the method afresh. */
        function orders() {
          class Orders {
            @Cached({ backend, ttl: 60 })
            async total(id: number): Promise<string> {
              return `${id}@v${version}`;
            }
          }
          return Orders;
        }
        const First = orders();
        assert.equal(await new First().total(1), '1@v1');
        await CacheModule.invalidate(First, 'total');
        version = 2;
        assert.equal(await new First().total(1), '1@v2');
        await CacheModule.get(backend).delete(generationKey(undefined, 'Orders.total'));
        version = 3;
        // A memory backend belongs to one process: only a shared one has another to ask.
        if (!CacheModule.get(backend).synchronous) assert.equal(await new (orders())().total(1), '1@v3');
        assert.equal(await new First().total(1), '1@v3');
        assert.equal(await new First().total(1), '1@v3');
      });

      it('never brings invalidated entries back when a tag record is lost', async () => {
        // invalidateTags reaches every registered backend: only this test's may be registered.
        CacheModule.reset();
        const backend = await registered();
        let version = 1;
        const profile = cached(async (id: string) => `${id}@v${version}`, {
          name: 'profile',
          backend,
          ttl: 60,
          tags: (id: string) => [`user:${id}`, 'users'],
        });
        assert.equal(await profile('1'), '1@v1');
        assert.equal(await profile('2'), '2@v1');
        await CacheModule.get(backend).delete(tagKey('user:1'));
        version = 2;
        await CacheModule.invalidateTags(['user:1']);
        assert.equal(await profile('1'), '1@v2');
        assert.equal(await profile('2'), '2@v1');
        await CacheModule.invalidateTags(['users']);
        await CacheModule.get(backend).delete(tagKey('users'));
        version = 3;
        assert.equal(await profile('2'), '2@v3');
        assert.equal(await profile('1'), '1@v3');
        assert.equal(await profile('1'), '1@v3');
      });
    });
  });
}
