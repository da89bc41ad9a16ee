import { expect } from 'chai';
import fc from 'fast-check';
import { inspect } from 'node:util';
import { encodeArguments } from '#src/keys/encode.js';
import { argumentList, lookalikeArgumentList, reshuffle, sameArguments } from './arguments.js';

const encode = (args: readonly unknown[]): string => encodeArguments(args, 'Spec.method');

/**
 * Several lists per run plus reshuffled copies of some of them, every pair compared both ways:
 * same arguments (by §10) ⇔ same encoding. The copies make non-trivial equal pairs certain.
 */
function expectEncodingMatchesSameness(lists: unknown[][], seed: number): void {
  const pool = [...lists, ...lists.filter((_, i) => i % 2 === 0).map((list, i) => reshuffle(list, seed + i) as unknown[])];
  const encodings = pool.map(encode);
  for (let i = 0; i < pool.length; i++) {
    for (let j = i + 1; j < pool.length; j++) {
      const same = sameArguments(pool[i]!, pool[j]!);
      expect(
        encodings[i] === encodings[j],
        `${inspect(pool[i], { depth: 9 })} vs ${inspect(pool[j], { depth: 9 })}: same arguments ${same}, encodings ${encodings[i]} / ${encodings[j]}`,
      ).to.equal(same);
    }
  }
}

describe('canonical argument encoding, property-based (fast-check)', () => {
  it('gives rich argument lists the same encoding exactly when they are the same arguments', () => {
    fc.assert(fc.property(fc.array(argumentList, { minLength: 2, maxLength: 6 }), fc.integer(), expectEncodingMatchesSameness), {
      numRuns: 2000,
    });
  });

  it('tells apart look-alike argument lists one step from each other', () => {
    fc.assert(
      fc.property(fc.array(lookalikeArgumentList, { minLength: 2, maxLength: 12 }), fc.integer(), expectEncodingMatchesSameness),
      {
        numRuns: 2000,
      },
    );
  });

  it('ignores object key order, Map/Set insertion order, undefined properties, Buffer vs Uint8Array and -0', () => {
    fc.assert(
      fc.property(argumentList, fc.integer(), (list, seed) => {
        const copy = reshuffle(list, seed) as unknown[];
        // The copy must still count as the same arguments, or the first property would prove nothing.
        expect(sameArguments(list, copy)).to.equal(true);
        expect(encode(copy), `${inspect(list, { depth: 9 })} reshuffled as ${inspect(copy, { depth: 9 })}`).to.equal(
          encode(list),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
