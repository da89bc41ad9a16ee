import { expect } from 'chai';
import fc from 'fast-check';
import { inspect } from 'node:util';
import { encodeArguments } from '#src/keys/encode.js';
import { KnownKeys } from '#src/keys/known-keys.js';
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
    fc.oneof(fc.constantFrom(null, undefined, true, false, 0, -0, NaN, 1, '1', '', 'u', 1n), fc.string({ maxLength: 3 }), fc.double()),
    fc.array(tie('value'), { maxLength: 2 }),
    fc.dictionary(fc.constantFrom('a', 'b', '1', ''), fc.option(tie('value'), { nil: undefined }), { maxKeys: 2 }),
  ),
})).value;

describe('known keys (the trie that spares a hit its key encoding)', () => {
  it('answers only with the key encoding gives, for rich argument lists and their reshuffled copies', () => {
    fc.assert(fc.property(fc.array(argumentList, { minLength: 1, maxLength: 8 }), fc.integer(), expectOnlyRightKeys), { numRuns: 2000 });
  });

  it('answers only with the key encoding gives, for look-alike argument lists', () => {
    fc.assert(fc.property(fc.array(lookalikeArgumentList, { minLength: 1, maxLength: 16 }), fc.integer(), expectOnlyRightKeys), { numRuns: 2000 });
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
    expect([[1, [2]], [[1, 2]], [[1], 2], [{ a: 'b' }], ['a', 'b'], [1, 2], [[1, [2]]], [{ a: ['b'] }]].map((list) => known.find(list))).to.deep.equal([
      'a',
      'b',
      'c',
      'd',
      'e',
      undefined,
      undefined,
      undefined,
    ]);
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
