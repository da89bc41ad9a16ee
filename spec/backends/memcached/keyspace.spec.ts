import { expect } from 'chai';
import fc from 'fast-check';
import {
  counterDigits,
  counterValue,
  expiryOf,
  expiryRemaining,
  isCounterValue,
  Keyspace,
  MAX_DIRECT_KEY_BYTES,
  RELATIVE_EXPIRY_LIMIT,
} from '#src/backends/memcached/keyspace.js';

const decoded = (token: string) => Buffer.from(token, 'base64');

describe('memcached key layout', () => {
  const keys = new Keyspace('app:');

  it('stores a short key readably as prefix, generation, colon and key', () => {
    expect(decoded(keys.token(42, 'user 1\r\nflush_all')).toString()).to.equal('app:42:user 1\r\nflush_all');
  });

  it('sends every key as one base64 token of at most 250 characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), fc.integer({ min: 1, max: 2 ** 48 }), (key, generation) => {
        const token = keys.token(generation, key);
        expect(token).to.match(/^[A-Za-z0-9+/]+=*$/);
        expect(token.length).to.be.at.most(250);
      }),
    );
  });

  it('hashes keys too long for a token, keeping them apart from short ones', () => {
    const long = 'k'.repeat(300);
    const token = decoded(keys.token(7, long));
    expect(token.subarray(0, 6).toString()).to.equal('app:7#');
    expect(token.length).to.equal(6 + 32);
    expect(keys.token(7, long)).not.to.equal(keys.token(7, `${long}x`));
    // The longest key still stored as is, and the first one hashed.
    const fits = 'k'.repeat(MAX_DIRECT_KEY_BYTES - 'app:7:'.length);
    expect(decoded(keys.token(7, fits)).toString()).to.equal(`app:7:${fits}`);
    expect(
      decoded(keys.token(7, `${fits}k`))
        .subarray(0, 6)
        .toString(),
    ).to.equal('app:7#');
  });

  it('keeps distinct keys distinct, lone surrogates included (UTF-8 would merge them)', () => {
    expect(keys.token(1, '\uD800')).not.to.equal(keys.token(1, '\uFFFD'));
    expect(keys.token(1, '\uDC00')).not.to.equal(keys.token(1, '\uD800'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), (a, b) => {
        fc.pre(a !== b);
        expect(keys.token(1, a)).not.to.equal(keys.token(1, b));
      }),
    );
  });

  it('keeps generations apart, and the generation key apart from every entry', () => {
    expect(keys.token(1, 'k')).not.to.equal(keys.token(2, 'k'));
    expect(decoded(keys.generationToken).toString()).to.equal('app:#generation');
  });

  it('refuses a prefix too long to leave room for a hashed key', () => {
    expect(() => new Keyspace('p'.repeat(129))).to.throw(TypeError, /prefix/);
  });
});

describe('memcached expiry', () => {
  const now = Date.UTC(2030, 0, 1);

  it('keeps 0 as never; otherwise whole seconds rounded up, plus the tick already under way', () => {
    expect(expiryOf(0, now)).to.equal(0);
    expect(expiryOf(0.001, now)).to.equal(2);
    expect(expiryOf(1, now)).to.equal(2);
    expect(expiryOf(1.5, now)).to.equal(3);
    expect(expiryOf(300, now)).to.equal(301);
  });

  it('sends more than 30 days as a Unix time, capped where memcached’s clock ends', () => {
    expect(expiryOf(RELATIVE_EXPIRY_LIMIT - 1, now)).to.equal(RELATIVE_EXPIRY_LIMIT);
    expect(expiryOf(RELATIVE_EXPIRY_LIMIT, now)).to.equal(now / 1000 + RELATIVE_EXPIRY_LIMIT + 1);
    expect(expiryOf(40 * 86_400, now)).to.equal(now / 1000 + 40 * 86_400 + 1);
    expect(expiryOf(100 * 365 * 86_400, now)).to.equal(2 ** 31 - 1);
  });

  it('keeps a remaining expiry as it is, never turning it into “never”', () => {
    expect(expiryRemaining(-1, now)).to.equal(0);
    expect(expiryRemaining(0, now)).to.equal(1);
    expect(expiryRemaining(90, now)).to.equal(90);
    expect(expiryRemaining(40 * 86_400, now)).to.equal(now / 1000 + 40 * 86_400);
  });
});

describe('memcached counters', () => {
  it('round-trip every safe integer, negatives included', () => {
    for (const value of [0, 1, -1, 42, -42, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
      expect(counterValue(Buffer.from(counterDigits(value)))).to.equal(value);
    }
    expect(counterDigits(0)).to.equal('9223372036854775808');
  });

  it('take integers only (not -0, fractions, bigints or numeric strings)', () => {
    expect([0, 7, -7].every(isCounterValue)).to.equal(true);
    expect([-0, 1.5, NaN, Infinity, 2 ** 53, 1n, '1', null].some(isCounterValue)).to.equal(false);
  });
});
