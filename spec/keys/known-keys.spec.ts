import { expect } from 'chai';
import fc from 'fast-check';
import { inspect } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeArguments } from '#src/keys/encode.js';
import { KnownKeys, learntKeysBytes, setLearntKeysBytes } from '#src/keys/known-keys.js';
import { cached, CacheModule, MemoryBackend } from 'hoard';
import { argumentList, lookalikeArgumentList, reshuffle } from './arguments.js';

/** The key the call path derives; undefined where encoding rejects the arguments. */
function encoded(args: readonly unknown[]): string | undefined {
  try {
    return encodeArguments(args, 'Spec.method', 'Spec.method:');
  } catch {
    return undefined;
  }
}

/** Learns every encodable list of `lists`, as the call path does after a hit. */
function learnt(lists: readonly unknown[][]): KnownKeys {
  const known = new KnownKeys();
  for (const list of lists) {
    const key = encoded(list);
    if (key !== undefined) known.learn(list, key);
  }
  return known;
}

/** Every list that the trie answers for gets exactly the key encoding gives it: a wrong key would serve a wrong value. */
function expectOnlyRightKeys(lists: unknown[][], seed: number): void {
  const known = learnt(lists);
  const probes = [...lists, ...lists.map((list, i) => reshuffle(list, seed + i) as unknown[])];
  for (const probe of probes) {
    const found = known.find(probe);
    if (found !== undefined) expect(found, inspect(probe, { depth: 9 })).to.equal(encoded(probe));
  }
}

/** Primitives, arrays and plain objects, small enough for the trie's bounds (parts, depth). */
const plain = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 2 },
    fc.oneof(
      fc.constantFrom(null, undefined, true, false, 0, -0, NaN, 1, '1', '', 'u', 1n),
      fc.string({ maxLength: 3 }),
      fc.double(),
    ),
    fc.array(tie('value'), { maxLength: 2 }),
    fc.dictionary(fc.constantFrom('a', 'b', '1', ''), fc.option(tie('value'), { nil: undefined }), { maxKeys: 2 }),
  ),
})).value;

describe('known keys (the trie that spares a hit its key encoding)', () => {
  // The process-wide budget is the next describe's subject: here no trie may be forgotten to fit
  // it, or thousands of property runs (whose tries are collected only later) would empty the one under test.
  before(() => setLearntKeysBytes(Number.MAX_SAFE_INTEGER));
  after(() => CacheModule.reset());

  it('answers only with the key encoding gives, for rich argument lists and their reshuffled copies', () => {
    fc.assert(fc.property(fc.array(argumentList, { minLength: 1, maxLength: 8 }), fc.integer(), expectOnlyRightKeys), {
      numRuns: 2000,
    });
  });

  it('answers only with the key encoding gives, for look-alike argument lists', () => {
    fc.assert(fc.property(fc.array(lookalikeArgumentList, { minLength: 1, maxLength: 16 }), fc.integer(), expectOnlyRightKeys), {
      numRuns: 2000,
    });
  });

  it('finds every learnt list of primitives, arrays and plain objects, and its reshuffled copies', () => {
    fc.assert(
      fc.property(fc.array(fc.array(plain, { maxLength: 3 }), { minLength: 1, maxLength: 8 }), fc.integer(), (lists, seed) => {
        const known = learnt(lists);
        for (const [i, list] of lists.entries()) {
          const copy = reshuffle(list, seed + i) as unknown[];
          expect(known.find(list), inspect(list, { depth: 9 })).to.equal(encoded(list));
          expect(known.find(copy), inspect(copy, { depth: 9 })).to.equal(encoded(list));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('does not take what it cannot key by value: symbol keys, class instances, deep or long structures', () => {
    const symbolKeyed = { a: 1, [Symbol('s')]: 1 };
    class Point {
      constructor(readonly x: number) {}
    }
    const deep = [[[[[1]]]]];
    const long = Array.from({ length: 40 }, (_, i) => i);
    const known = new KnownKeys();
    for (const list of [[{ a: 1 }], [symbolKeyed], [new Point(1)], [deep], [long], ['x'.repeat(300)], [new Date(1)]]) {
      known.learn(list, 'key');
    }
    expect(known.find([{ a: 1 }])).to.equal('key');
    expect(known.find([symbolKeyed]), 'an object with a symbol key').to.equal(undefined);
    expect(known.find([{ x: 1 }]), 'a plain object like the class instance').to.equal(undefined);
    expect(known.find([new Point(1)])).to.equal(undefined);
    expect(known.find([deep])).to.equal(undefined);
    expect(known.find([long])).to.equal(undefined);
    expect(known.find(['x'.repeat(300)])).to.equal(undefined);
    expect(known.find([new Date(1)])).to.equal(undefined);
  });

  it('tells apart where one argument ends and the next begins', () => {
    const known = new KnownKeys();
    known.learn([1, [2]], 'a');
    known.learn([[1, 2]], 'b');
    known.learn([[1], 2], 'c');
    known.learn([{ a: 'b' }], 'd');
    known.learn(['a', 'b'], 'e');
    expect(
      [[1, [2]], [[1, 2]], [[1], 2], [{ a: 'b' }], ['a', 'b'], [1, 2], [[1, [2]]], [{ a: ['b'] }]].map((list) =>
        known.find(list),
      ),
    ).to.deep.equal(['a', 'b', 'c', 'd', 'e', undefined, undefined, undefined]);
  });

  it('holds at most its bound of keys, starting over when full', () => {
    const known = new KnownKeys(3);
    for (const id of [1, 2, 3]) known.learn([id], `k${id}`);
    expect([1, 2, 3].map((id) => known.find([id]))).to.deep.equal(['k1', 'k2', 'k3']);
    known.learn([4], 'k4');
    expect([1, 2, 3, 4].map((id) => known.find([id]))).to.deep.equal([undefined, undefined, undefined, 'k4']);
  });

  it('forgets every key when asked (the key prefix changed)', () => {
    const known = new KnownKeys();
    known.learn([1], 'old');
    known.forget();
    expect(known.find([1])).to.equal(undefined);
  });
});

describe('learnt keys: one bound for the whole process', () => {
  // A bound of 0 forgets what earlier tests left, so each test starts from an empty budget.
  beforeEach(() => setLearntKeysBytes(0));
  afterEach(() => CacheModule.reset());

  it('keeps every call site together within the bound, forgetting the largest trie first', () => {
    setLearntKeysBytes(60_000);
    const small = new KnownKeys();
    small.learn([0, { region: 'eu' }], 'small:0');
    const sites = Array.from({ length: 10 }, () => new KnownKeys());
    let most = 0;
    for (let id = 0; id < 300; id++) {
      for (const [i, site] of sites.entries()) {
        site.learn([id, { region: 'eu' }], `site${i}:${id}`);
        most = Math.max(most, learntKeysBytes());
      }
    }
    expect(most).to.be.at.most(60_000);
    expect(most, 'the bound was reached').to.be.above(50_000);
    expect(small.find([0, { region: 'eu' }]), 'the smallest trie keeps its key').to.equal('small:0');
    expect(
      sites.some((site, i) => site.find([299, { region: 'eu' }]) === `site${i}:299`),
      'the latest keys are learnt',
    ).to.equal(true);
  });

  it("gives a forgotten trie's bytes back, and shrinks at once to a lower bound", () => {
    CacheModule.reset();
    const before = learntKeysBytes();
    const known = new KnownKeys();
    for (let id = 0; id < 100; id++) known.learn([id], `k${id}`);
    expect(learntKeysBytes()).to.be.above(before + 100 * 56);
    known.forget();
    expect(learntKeysBytes()).to.equal(before);
    for (let id = 0; id < 100; id++) known.learn([id], `k${id}`);
    CacheModule.configure({ learntKeysBytes: 1_000 });
    expect(learntKeysBytes()).to.be.at.most(1_000);
    expect(known.find([99])).to.equal(undefined);
  });

  it('gives back the bytes of a call site that is gone, so live ones are not forgotten to pay for it', async function () {
    this.timeout(30_000);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    CacheModule.reset();
    const live = new KnownKeys();
    live.learn(['live'], 'live-key');
    const before = learntKeysBytes();
    (() => {
      const gone = new KnownKeys();
      for (let id = 0; id < 100; id++) gone.learn([id], `k${id}`);
    })();
    expect(learntKeysBytes()).to.be.above(before + 100 * 56);
    for (let turn = 0; turn < 100 && learntKeysBytes() !== before; turn++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(learntKeysBytes()).to.equal(before);
    expect(live.find(['live'])).to.equal('live-key');
  });

  it('learns nothing with a bound of 0, and the call path still serves the right values', () => {
    CacheModule.configure({ learntKeysBytes: 0 });
    CacheModule.register(new MemoryBackend());
    const before = learntKeysBytes();
    let runs = 0;
    const double = cached((n: number) => (runs++, n * 2), { name: 'double' });
    for (let pass = 0; pass < 3; pass++) for (let n = 0; n < 50; n++) expect(double(n)).to.equal(n * 2);
    expect(runs).to.equal(50);
    expect(learntKeysBytes()).to.equal(before);
  });

  it('rejects a bound that is not a number of bytes ≥ 0', () => {
    for (const bad of [-1, Number.NaN, Infinity, '4MB']) {
      expect(() => CacheModule.configure({ learntKeysBytes: bad as number }), String(bad)).to.throw(TypeError, /learntKeysBytes/);
    }
  });
});
