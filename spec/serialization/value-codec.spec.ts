import { expect } from 'chai';
import { randomBytes, scryptSync } from 'node:crypto';
import * as zlib from 'node:zlib';
import sinon from 'sinon';
import { CacheArgumentError, CacheIntegrityError, CacheSerializationError, defaultSerializer } from 'hoard';
import { ValueCodec, type ValueCodecOptions } from '#src/serialization/value-codec.js';

const key = 'app:permissions:alice';
const json = (size: number) =>
  JSON.stringify(Array.from({ length: Math.ceil(size / 40) }, (_, i) => ({ id: i, name: `item ${i}` })));
const hasZstd = typeof (zlib as unknown as Record<string, unknown>).zstdCompressSync === 'function';

/** What a backend would write and read back under `key`. */
function roundTrip(codec: ValueCodec, data: Buffer | string, ttl = 60): Buffer {
  const stored = codec.seal(key, data, ttl);
  return codec.open('permissions:alice', key, typeof stored === 'string' ? Buffer.from(stored) : stored)!;
}

function refusal(run: () => unknown): CacheIntegrityError {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(CacheIntegrityError);
    return error as CacheIntegrityError;
  }
  expect.fail('the entry was accepted');
}

describe('ValueCodec: what remote backends store around the serializer', () => {
  const secret = randomBytes(32);
  const configurations: [string, ValueCodecOptions][] = [
    ['nothing', {}],
    ['gzip', { compression: { threshold: 0 } }],
    ['brotli', { compression: { threshold: 0, algorithm: 'brotli' } }],
    ['integrity', { integrity: { keys: [secret] } }],
    ['integrity and gzip', { integrity: { keys: [secret] }, compression: true }],
    ['encryption', { encryption: { keys: [secret] } }],
    ['encryption and brotli', { encryption: { keys: [secret] }, compression: { algorithm: 'brotli', threshold: 0 } }],
  ];

  for (const [name, options] of configurations) {
    it(`round-trips small, large, empty and binary payloads with ${name}`, () => {
      const codec = new ValueCodec('TestBackend', options);
      for (const data of ['', '1', json(100), json(100_000), Buffer.from([0, 248, 104, 100, 0, 1, 2]), randomBytes(5000)]) {
        expect(roundTrip(codec, data).equals(Buffer.from(data))).to.equal(true);
      }
    });
  }

  describe('compression', () => {
    it('stores the serializer output unchanged below the threshold, and compressed above it', () => {
      const codec = new ValueCodec('TestBackend', { compression: { threshold: 1024 } });
      const small = json(500);
      expect(codec.seal(key, small, 60)).to.equal(small);
      const large = json(100_000);
      const stored = codec.seal(key, large, 60) as Buffer;
      expect(stored.length).to.be.lessThan(large.length / 4);
      expect(zlib.gunzipSync(stored.subarray(5)).toString()).to.equal(large);
    });

    it('keeps a value plain when compressing would not make it smaller', () => {
      const codec = new ValueCodec('TestBackend', { compression: { threshold: 0 } });
      const random = randomBytes(10_000);
      expect(codec.seal(key, random, 60)).to.equal(random);
      expect(codec.seal(key, '12345', 60)).to.equal('12345');
    });

    it('reads compressed and plain entries whatever its own setting, so it can change without a flush', () => {
      const plain = new ValueCodec('TestBackend', {});
      const gzip = new ValueCodec('TestBackend', { compression: true });
      const brotli = new ValueCodec('TestBackend', { compression: { algorithm: 'brotli' } });
      const data = json(50_000);
      for (const writer of [plain, gzip, brotli]) {
        const stored = writer.seal(key, data, 60);
        for (const reader of [plain, gzip, brotli]) {
          expect(reader.open('k', key, Buffer.from(stored))!.toString()).to.equal(data);
        }
      }
    });

    it('frames a custom serializer output that begins like a framed entry, so it reads back as itself', () => {
      const lookalike = Buffer.from([0x00, 0xf8, 0x68, 0x64, 0x01, 0x1f, 0x8b]);
      for (const options of [{}, { compression: { threshold: 0 } }] as ValueCodecOptions[]) {
        const codec = new ValueCodec('TestBackend', options);
        const stored = codec.seal(key, lookalike, 60) as Buffer;
        expect(stored.length).to.be.greaterThan(lookalike.length);
        expect(codec.open('k', key, stored)!.equals(lookalike)).to.equal(true);
      }
    });

    it('never takes the default serializer output for a framed entry', () => {
      const values = [
        '\u0000',
        '\u0000\u00f8hd',
        { '\u0000': '\u00f8' },
        new Map([['\u0000', 1]]),
        Buffer.from([0, 248, 104, 100]),
        -0,
        undefined,
        1n,
      ];
      const codec = new ValueCodec('TestBackend', {});
      for (const value of values) {
        const serialized = defaultSerializer.serialize(value);
        const bytes = Buffer.from(serialized);
        expect(bytes[0], JSON.stringify(String(value))).not.to.equal(0);
        expect(defaultSerializer.deserialize(codec.open('k', key, bytes)!)).to.deep.equal(value);
      }
    });

    it('reports a corrupted compressed payload as a CacheSerializationError', () => {
      const codec = new ValueCodec('TestBackend', { compression: { threshold: 0 } });
      const stored = Buffer.from(codec.seal(key, json(10_000), 60) as Buffer);
      stored[stored.length - 6]! ^= 0xff;
      expect(() => codec.open('permissions:alice', key, stored)).to.throw(
        CacheSerializationError,
        /"permissions:alice" cannot be decompressed \(gzip\)/,
      );
    });

    it('refuses to expand an entry past the bound (a decompression bomb)', () => {
      const bomb = Buffer.concat([
        Buffer.from([0x00, 0xf8, 0x68, 0x64, 0x01]),
        zlib.gzipSync(Buffer.alloc(65 * 1024 * 1024), { level: 1 }),
      ]);
      const codec = new ValueCodec('TestBackend', {});
      expect(() => codec.open('k', key, bomb)).to.throw(CacheSerializationError, /cannot be decompressed/);
    });

    it('refuses options that cannot work, naming them', () => {
      expect(() => new ValueCodec('TestBackend', { compression: { threshold: -1 } })).to.throw(
        CacheArgumentError,
        /TestBackend: compression.threshold/,
      );
      expect(() => new ValueCodec('TestBackend', { compression: { algorithm: 'lz4' as never } })).to.throw(
        CacheArgumentError,
        /'gzip', 'brotli' or 'zstd'/,
      );
      expect(() => new ValueCodec('TestBackend', { compression: 'yes' as never })).to.throw(
        CacheArgumentError,
        /compression must be/,
      );
      expect(() => new ValueCodec('TestBackend', { compression: null as never })).to.throw(
        CacheArgumentError,
        /compression must be .* got null/,
      );
    });

    it(`zstd: ${hasZstd ? 'round-trips on this Node' : 'is refused clearly on a Node without it, and its entries are a decode error'}`, () => {
      if (hasZstd) {
        const codec = new ValueCodec('TestBackend', { compression: { algorithm: 'zstd', threshold: 0 } });
        expect(roundTrip(codec, json(10_000)).toString()).to.equal(json(10_000));
        return;
      }
      expect(() => new ValueCodec('TestBackend', { compression: { algorithm: 'zstd' } })).to.throw(
        CacheArgumentError,
        new RegExp(`zstd support \\(22.15 or later\\); this is Node ${process.version.replace(/\./g, '\\.')}`),
      );
      const entry = Buffer.from([0x00, 0xf8, 0x68, 0x64, 0x03, 0x28, 0xb5, 0x2f, 0xfd]);
      expect(() => new ValueCodec('TestBackend', {}).open('k', key, entry)).to.throw(
        CacheSerializationError,
        /compressed with zstd/,
      );
    });
  });

  describe('integrity and encryption', () => {
    for (const mode of ['integrity', 'encryption'] as const) {
      describe(mode, () => {
        const codec = new ValueCodec('TestBackend', { [mode]: { keys: [secret] } });
        const stored = codec.seal(key, json(300), 60) as Buffer;

        it('refuses the entry with any single bit flipped', () => {
          for (let at = 0; at < stored.length; at++) {
            for (const bit of [0x01, 0x80]) {
              const flipped = Buffer.from(stored);
              flipped[at]! ^= bit;
              refusal(() => codec.open('k', key, flipped));
            }
          }
        });

        it('refuses it truncated to any length', () => {
          for (let length = 0; length < stored.length; length++) refusal(() => codec.open('k', key, stored.subarray(0, length)));
        });

        it('refuses it under another key (moved), even one that differs only past UTF-8 (a lone surrogate)', () => {
          expect(refusal(() => codec.open('k', 'app:permissions:mallory', stored)).reason).to.equal('tampered');
          const surrogate = new ValueCodec('TestBackend', { [mode]: { keys: [secret] } });
          const written = surrogate.seal('k\ud800', 'x', 60) as Buffer;
          expect(refusal(() => surrogate.open('k', 'k\udbff', written)).reason).to.equal('tampered');
        });

        it('refuses an unsigned entry and one written under a key it does not hold', () => {
          expect(refusal(() => codec.open('k', key, Buffer.from(json(300)))).reason).to.equal('unsigned');
          expect(
            refusal(() =>
              codec.open('k', key, new ValueCodec('T', { compression: { threshold: 0 } }).seal(key, json(300), 60) as Buffer),
            ).reason,
          ).to.equal('unsigned');
          const other = new ValueCodec('TestBackend', { [mode]: { keys: [randomBytes(32)] } });
          expect(refusal(() => codec.open('k', key, other.seal(key, json(300), 60) as Buffer)).reason).to.equal('unknown-key');
        });

        it('writes with the first key and reads with every key (rotation)', () => {
          const previous = randomBytes(32);
          const next = randomBytes(32);
          const old = new ValueCodec('T', { [mode]: { keys: [previous] } });
          const rotated = new ValueCodec('T', { [mode]: { keys: [next, previous] } });
          const dropped = new ValueCodec('T', { [mode]: { keys: [next] } });
          const before = old.seal(key, 'before', 60) as Buffer;
          const after = rotated.seal(key, 'after', 60) as Buffer;
          expect(rotated.open('k', key, before)!.toString()).to.equal('before');
          expect(dropped.open('k', key, after)!.toString()).to.equal('after');
          expect(refusal(() => dropped.open('k', key, before)).reason).to.equal('unknown-key');
          expect(refusal(() => old.open('k', key, after)).reason).to.equal('unknown-key');
        });

        it('treats an entry past its signed expiry as a miss: a genuine entry replayed after its ttl', () => {
          const clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
          try {
            const entry = codec.seal(key, 'short-lived', 2) as Buffer;
            const forever = codec.seal(key, 'forever', 0) as Buffer;
            clock.tick(1999);
            expect(codec.open('k', key, entry)!.toString()).to.equal('short-lived');
            clock.tick(1);
            expect(codec.open('k', key, entry)).to.equal(undefined);
            clock.tick(10 ** 9);
            expect(codec.open('k', key, forever)!.toString()).to.equal('forever');
          } finally {
            clock.restore();
          }
        });
      });
    }

    it('encrypts: the same value stored twice differs, and its text is not in the entry', () => {
      const codec = new ValueCodec('T', { encryption: { keys: [secret] } });
      const first = codec.seal(key, '{"role":"admin"}', 60) as Buffer;
      const second = codec.seal(key, '{"role":"admin"}', 60) as Buffer;
      expect(first.equals(second)).to.equal(false);
      expect(first.includes('admin')).to.equal(false);
    });

    it('reads signed entries while migrating to encryption (both given: encryption writes, both read)', () => {
      const signed = new ValueCodec('T', { integrity: { keys: [secret] } }).seal(key, 'signed', 60) as Buffer;
      const both = new ValueCodec('T', { integrity: { keys: [secret] }, encryption: { keys: [secret] } });
      expect(both.open('k', key, signed)!.toString()).to.equal('signed');
      const written = both.seal(key, 'secret', 60) as Buffer;
      expect(written.includes('secret')).to.equal(false);
      expect(refusal(() => new ValueCodec('T', { encryption: { keys: [secret] } }).open('k', key, signed)).reason).to.equal(
        'unknown-key',
      );
    });

    it('reads signed entries unchecked once integrity is turned off, and refuses encrypted ones', () => {
      const off = new ValueCodec('T', {});
      expect(
        off.open('k', key, new ValueCodec('T', { integrity: { keys: [secret] } }).seal(key, 'signed', 60) as Buffer)!.toString(),
      ).to.equal('signed');
      const encrypted = new ValueCodec('T', { encryption: { keys: [secret] } }).seal(key, 'secret', 60) as Buffer;
      expect(refusal(() => off.open('k', key, encrypted)).reason).to.equal('unknown-key');
    });

    it('refuses secrets under 32 bytes, and other mistakes, at construction with what to do', () => {
      expect(() => new ValueCodec('RedisBackend', { integrity: { keys: ['correct horse battery staple'] } })).to.throw(
        CacheArgumentError,
        /RedisBackend: integrity.keys\[0\] has 28 bytes; at least 32 are needed.*scrypt/,
      );
      expect(() => new ValueCodec('RedisBackend', { encryption: { keys: [secret, randomBytes(16)] } })).to.throw(
        CacheArgumentError,
        /encryption.keys\[1\] has 16 bytes/,
      );
      expect(() => new ValueCodec('RedisBackend', { integrity: { keys: [] } })).to.throw(CacheArgumentError, /non-empty array/);
      expect(() => new ValueCodec('RedisBackend', { integrity: { keys: [42 as never] } })).to.throw(
        CacheArgumentError,
        /integrity.keys\[0\] must be a Buffer/,
      );
      expect(() => new ValueCodec('RedisBackend', { integrity: { keys: [secret, Buffer.from(secret)] } })).to.throw(
        CacheArgumentError,
        /same secret/,
      );
      // A passphrase stretched by scrypt, as docs/security.md shows, is accepted.
      const derived = scryptSync('correct horse battery staple', 'myapp cache v1', 32);
      expect(roundTrip(new ValueCodec('T', { integrity: { keys: [derived, 'x'.repeat(32)] } }), 'ok').toString()).to.equal('ok');
    });
  });
});
