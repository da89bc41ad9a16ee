/**
 * memcached's meta protocol (memcached ≥ 1.6): building request lines and cutting the reply
 * stream into frames. Pure functions and a parser; no sockets here.
 *
 * Every key travels base64-encoded with the `b` flag, so a key is one token of `[A-Za-z0-9+/=]`
 * whatever bytes it holds: no space, CR/LF or NUL in a key can end the command line or start
 * another command. Values travel as `<length>\r\n<bytes>\r\n`, so they are binary-safe.
 */

/** A chunk of bytes to write: request lines are strings (ASCII), values are Buffers. */
export type Chunk = string | Buffer;

/** memcached refuses key tokens longer than this (`CLIENT_ERROR bad command line format`). */
export const MAX_KEY_TOKEN = 250;

/**
 * One reply: `code` is the first word (`VA`, `HD`, `EN`, `NS`, `EX`, `NF`, `MN`, or an error
 * word: `ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`); `flags` are the returned meta flags
 * (`f5`, `t-1`, `O3`...); `value` is the data block of a `VA` reply; `line` is the raw first
 * line, kept for error messages.
 */
export interface Frame {
  readonly code: string;
  readonly flags: readonly string[];
  readonly value?: Buffer;
  readonly line: string;
}

/** The value of the meta flag `letter` in a reply (`t` in `t-1` → `'-1'`), or undefined. */
export function flagOf(frame: Frame, letter: string): string | undefined {
  for (const flag of frame.flags) if (flag[0] === letter) return flag.slice(1);
  return undefined;
}

/** Replies that report a fault; the rest of their line is a message, not flags. */
const ERROR_CODES = new Set(['ERROR', 'CLIENT_ERROR', 'SERVER_ERROR']);

/** ` <flags>`, or nothing: memcached takes no trailing space. */
const more = (flags: string) => (flags === '' ? '' : ` ${flags}`);

/** `mg <key> b <flags>`: get. Without `v` a hit answers `HD`; with `q`, a miss answers nothing. */
export function metaGet(key: string, flags = ''): string {
  return `mg ${key} b${more(flags)}\r\n`;
}

/** `ms <key> <length> b <flags>` followed by the value. */
export function metaSet(key: string, value: Buffer, flags = ''): Chunk[] {
  return [`ms ${key} ${value.length} b${more(flags)}\r\n`, value, '\r\n'];
}

/** `md <key> b <flags>`: delete. */
export function metaDelete(key: string, flags = ''): string {
  return `md ${key} b${more(flags)}\r\n`;
}

/** `ma <key> b <flags>`: arithmetic (increment / decrement, optionally auto-creating). */
export function metaArithmetic(key: string, flags = ''): string {
  return `ma ${key} b${more(flags)}\r\n`;
}

/** `mn`: answered by `MN` once every request before it on the connection has answered. */
export const META_NOOP = 'mn\r\n';

const CRLF = 0x0a0d; // "\r\n" read as a little-endian uint16
const LF = 0x0a;

/**
 * Cuts the byte stream from a server into frames, in order. A value arriving in many TCP
 * chunks is gathered in a list and copied once, so a 1 MiB value costs one copy, not one
 * per chunk.
 */
export class FrameParser {
  /** Unparsed bytes from `start` on. */
  private buffer: Buffer = Buffer.alloc(0);
  private start = 0;
  /** While a value block is incomplete: its header, and the chunks gathered so far. */
  private header?: { code: string; flags: string[]; line: string; size: number };
  private parts: Buffer[] = [];
  private partsLength = 0;

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  push(chunk: Buffer): void {
    if (this.header !== undefined) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < this.header.size + 2) return;
      this.buffer = Buffer.concat(this.parts, this.partsLength);
      this.start = 0;
      this.parts = [];
      this.partsLength = 0;
    } else if (this.start >= this.buffer.length) {
      this.buffer = chunk;
      this.start = 0;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.start), chunk]);
      this.start = 0;
    }
    this.drain();
  }

  private drain(): void {
    const buffer = this.buffer;
    for (;;) {
      if (this.header !== undefined) {
        const { size } = this.header;
        if (buffer.length - this.start < size + 2) {
          // Park the partial value; `push` gathers the rest without re-copying it.
          this.parts = [buffer.subarray(this.start)];
          this.partsLength = buffer.length - this.start;
          this.buffer = Buffer.alloc(0);
          this.start = 0;
          return;
        }
        if (buffer.readUInt16LE(this.start + size) !== CRLF) {
          throw new Error('memcached reply out of sync: value block not followed by CRLF');
        }
        const { code, flags, line } = this.header;
        const value = buffer.subarray(this.start, this.start + size);
        this.header = undefined;
        this.start += size + 2;
        this.onFrame({ code, flags, line, value });
        continue;
      }
      const end = buffer.indexOf(LF, this.start);
      if (end < 0) return;
      const line = buffer.toString('latin1', this.start, end > this.start && buffer[end - 1] === 0x0d ? end - 1 : end);
      this.start = end + 1;
      const words = line.split(' ');
      const code = words[0];
      if (code === 'VA') {
        const size = Number(words[1]);
        if (!Number.isSafeInteger(size) || size < 0) throw new Error(`memcached reply out of sync: ${JSON.stringify(line)}`);
        this.header = { code, flags: words.slice(2), line, size };
        continue;
      }
      this.onFrame({ code, flags: ERROR_CODES.has(code) ? [] : words.slice(1), line });
    }
  }
}
