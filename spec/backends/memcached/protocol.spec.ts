import { expect } from 'chai';
import fc from 'fast-check';
import {
  FrameParser,
  flagOf,
  metaArithmetic,
  metaDelete,
  metaGet,
  metaSet,
  type Frame,
} from '#src/backends/memcached/protocol.js';

function parseAll(chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((frame) => frames.push(frame));
  for (const chunk of chunks) parser.push(chunk);
  return frames;
}

const plain = (frames: Frame[]) => frames.map(({ code, flags, value }) => ({ code, flags, value: value?.toString('latin1') }));

describe('meta protocol', () => {
  describe('request lines', () => {
    it('put the key token, the b flag and the flags on one line', () => {
      expect(metaGet('a2V5', 'v f')).to.equal('mg a2V5 b v f\r\n');
      expect(metaGet('a2V5')).to.equal('mg a2V5 b\r\n');
      expect(metaDelete('a2V5', 'q')).to.equal('md a2V5 b q\r\n');
      expect(metaArithmetic('a2V5', 'N0 D1 v')).to.equal('ma a2V5 b N0 D1 v\r\n');
    });

    it('send a value as its byte length and the raw bytes', () => {
      const value = Buffer.from('a\r\nb\0c');
      expect(metaSet('a2V5', value, 'T5 F1')).to.deep.equal(['ms a2V5 6 b T5 F1\r\n', value, '\r\n']);
    });
  });

  describe('FrameParser', () => {
    const stream = Buffer.concat([
      Buffer.from('VA 7 f1 t-1 O3\r\n'),
      Buffer.from('a\r\nb\0\r\n'),
      Buffer.from('\r\nHD\r\nEN\r\nNF O9\r\nSERVER_ERROR object too large for cache\r\nVA 0 f0\r\n\r\nMN\r\n'),
    ]);
    const expected = [
      { code: 'VA', flags: ['f1', 't-1', 'O3'], value: 'a\r\nb\0\r\n' },
      { code: 'HD', flags: [], value: undefined },
      { code: 'EN', flags: [], value: undefined },
      { code: 'NF', flags: ['O9'], value: undefined },
      { code: 'SERVER_ERROR', flags: [], value: undefined },
      { code: 'VA', flags: ['f0'], value: '' },
      { code: 'MN', flags: [], value: undefined },
    ];

    it('cuts a reply stream into frames, values binary-safe (CR/LF and NUL inside)', () => {
      const frames = parseAll([stream]);
      expect(plain(frames)).to.deep.equal(expected);
      expect(frames[4]!.line).to.equal('SERVER_ERROR object too large for cache');
      expect(flagOf(frames[0]!, 't')).to.equal('-1');
      expect(flagOf(frames[0]!, 'O')).to.equal('3');
      expect(flagOf(frames[1]!, 'f')).to.equal(undefined);
    });

    it('gives the same frames however TCP splits the stream', () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
          const bounds = [0, ...cuts.sort((a, b) => a - b), stream.length];
          const chunks = bounds.slice(1).map((end, i) => stream.subarray(bounds[i], end));
          expect(plain(parseAll(chunks))).to.deep.equal(expected);
        }),
      );
    });

    it('gathers a large value from many chunks', () => {
      const value = Buffer.alloc(1024 * 1024, 7);
      const whole = Buffer.concat([Buffer.from(`VA ${value.length} f1\r\n`), value, Buffer.from('\r\nHD\r\n')]);
      const chunks: Buffer[] = [];
      for (let at = 0; at < whole.length; at += 65_536) chunks.push(whole.subarray(at, at + 65_536));
      const frames = parseAll(chunks);
      expect(frames.map((frame) => frame.code)).to.deep.equal(['VA', 'HD']);
      expect(frames[0]!.value!.equals(value)).to.equal(true);
    });

    it('refuses a value block that does not end where its length says', () => {
      expect(() => parseAll([Buffer.from('VA 2\r\nabc\r\n')])).to.throw(/out of sync/);
    });
  });
});
