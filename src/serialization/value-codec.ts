import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CacheArgumentError, CacheIntegrityError, CacheSerializationError, type CacheIntegrityReason } from '../errors.js';
import {
  COMPRESSORS,
  compressorFor,
  DEFAULT_COMPRESSION_THRESHOLD,
  MAX_DECOMPRESSED_BYTES,
  type CompressionOptions,
  type Compressor,
} from './compression.js';
import { KEY_ID_BYTES, KeyRing, type CacheKeysOptions } from './key-ring.js';

/*
 * What a remote backend stores, around the serializer's bytes.
 *
 * A plain entry is the serializer's output, unchanged: what hoard always stored, what other
 * programs can read, and what Redis' INCR-like script and memcached's counters parse as numbers.
 *
 * Anything else is framed: MAGIC, a format byte (protection << 4 | compression), then
 *   protection 0 (none):  payload
 *   protection 1 (HMAC):  key id (4) | expires at (8) | HMAC-SHA256 (32) | payload
 *   protection 2 (AES):   key id (4) | expires at (8) | nonce (12) | GCM tag (16) | encrypted payload
 * where payload is the serializer's output, compressed when the compression id says so, and
 * "expires at" is the writer's clock in ms (0 = never) at which the entry stops being genuine.
 * The HMAC, or GCM's associated data, covers DOMAIN, the key the entry is stored under and every
 * header byte before it: a changed byte, a changed format, an entry copied to another key, or one
 * replayed after its ttl fails.
 *
 * MAGIC cannot begin a plain entry of the default serializer (JSON text, or `~` and JSON text:
 * never a NUL) nor of any serializer that returns a string (0xF8 is not UTF-8). A serializer that
 * returns a Buffer beginning with MAGIC has that output framed (protection 0, no compression), so
 * it is read back as itself; only an entry written by an older hoard from such a Buffer could be
 * taken for a framed one, and it then fails to decode (a miss) rather than yield another value.
 */
const MAGIC = Buffer.from([0x00, 0xf8, 0x68, 0x64]);
const FORMAT_AT = MAGIC.length;
const HEADER_BYTES = FORMAT_AT + 1;
/** Key id and expiry, after the format byte of a protected entry; they are authenticated too. */
const PROTECTED_HEADER_BYTES = HEADER_BYTES + KEY_ID_BYTES + 8;
const MAC_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const PROTECTION = { none: 0, hmac: 1, aes: 2 } as const;
/** Separates hoard's MACs and associated data from anything else computed with the same keys. */
const DOMAIN = Buffer.from('hoard entry v1\0');

/** `compression`, `integrity` and `encryption` of a remote backend. */
export interface ValueCodecOptions {
  compression?: boolean | CompressionOptions;
  integrity?: CacheKeysOptions;
  encryption?: CacheKeysOptions;
}

function isFramed(data: Buffer): boolean {
  return (
    data.length >= MAGIC.length && data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2] && data[3] === MAGIC[3]
  );
}

/** The bound key as UTF-16 code units, length first: distinct key strings never bind alike (UTF-8 would merge lone surrogates). */
function boundKeyBytes(boundKey: string): Buffer {
  const key = Buffer.from(boundKey, 'utf16le');
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(key.length, 0);
  return Buffer.concat([DOMAIN, length, key]);
}

function toBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * Between the serializer and the server: compression above a threshold, then an HMAC or AES-GCM
 * bound to the entry's key, and back. One per remote backend, built from its options (which it
 * validates: a short secret or an unknown algorithm is a TypeError at construction).
 */
export class ValueCodec {
  /** True when entries are signed or encrypted: plain entries and counters are then refused. */
  readonly protects: boolean;
  private readonly compressor: Compressor | undefined;
  private readonly compressionId: number = 0;
  private readonly threshold: number = DEFAULT_COMPRESSION_THRESHOLD;
  private readonly integrity: KeyRing | undefined;
  private readonly encryption: KeyRing | undefined;

  constructor(
    private readonly label: string,
    options: ValueCodecOptions,
  ) {
    const { compression, integrity, encryption } = options;
    if (compression !== undefined && compression !== false) {
      // Checked before it is destructured: `null` would otherwise throw the engine's own TypeError.
      if (typeof compression !== 'boolean' && (typeof compression !== 'object' || compression === null)) {
        throw new CacheArgumentError(
          `${label}: compression must be true or { threshold?, algorithm? }, got ${String(compression)}`,
        );
      }
      const { threshold = DEFAULT_COMPRESSION_THRESHOLD, algorithm = 'gzip' } = compression === true ? {} : compression;
      if (!Number.isSafeInteger(threshold) || threshold < 0) {
        throw new CacheArgumentError(
          `${label}: compression.threshold must be a whole number of bytes ≥ 0, got ${String(threshold)}`,
        );
      }
      [this.compressionId, this.compressor] = compressorFor(label, algorithm);
      this.threshold = threshold;
    }
    if (integrity !== undefined) this.integrity = new KeyRing(label, 'integrity', integrity);
    if (encryption !== undefined) this.encryption = new KeyRing(label, 'encryption', encryption);
    this.protects = this.integrity !== undefined || this.encryption !== undefined;
  }

  /**
   * What to store for the serializer's output `data` under `boundKey`, genuine until `ttl`
   * seconds from now (0 = always). Returns `data` itself when there is nothing to add.
   */
  seal(boundKey: string, data: Buffer | string, ttl: number): Buffer | string {
    const compressed = this.compress(data);
    if (this.encryption !== undefined) return this.encrypt(boundKey, compressed, ttl);
    if (this.integrity !== undefined) return this.sign(boundKey, compressed, ttl);
    if (compressed.id !== 0) return Buffer.concat([this.header(PROTECTION.none, compressed.id), toBuffer(compressed.payload)]);
    // A Buffer that looks framed is framed, so that it is read back as itself (see the top).
    if (typeof data !== 'string' && isFramed(data)) return Buffer.concat([this.header(PROTECTION.none, 0), data]);
    return data;
  }

  /**
   * The serializer's bytes stored as `data` under `boundKey` (read for hoard key `key`), or
   * undefined when a protected entry is past its signed expiry (a miss). Throws a
   * CacheIntegrityError for an entry the keys refuse, a CacheSerializationError for one that
   * cannot be decompressed.
   */
  open(key: string, boundKey: string, data: Buffer): Buffer | undefined {
    if (!isFramed(data)) {
      if (this.protects) throw this.refused(key, 'unsigned', 'carries no signature');
      return data;
    }
    if (data.length < HEADER_BYTES) throw this.unreadable(key, 'is too short for its header (truncated?)');
    const format = data[FORMAT_AT];
    const protection = format >> 4;
    let payload: Buffer | undefined;
    if (protection === PROTECTION.none) {
      if (this.protects) throw this.refused(key, 'unsigned', 'carries no signature');
      payload = data.subarray(HEADER_BYTES);
    } else if (protection === PROTECTION.hmac) {
      payload = this.verify(key, boundKey, data);
    } else if (protection === PROTECTION.aes) {
      payload = this.decrypt(key, boundKey, data);
    } else {
      throw this.unreadable(key, `has an unknown format (${format}); written by a newer hoard?`);
    }
    return payload === undefined ? undefined : this.decompress(key, format & 0x0f, payload);
  }

  /** The signed expiry (ms, 0 = never) of an entry `open` accepted; 0 for an unprotected one. */
  expiresAt(data: Buffer): number {
    if (!isFramed(data) || data[FORMAT_AT] >> 4 === PROTECTION.none) return 0;
    return Number(data.readBigUInt64BE(HEADER_BYTES + KEY_ID_BYTES));
  }

  private compress(data: Buffer | string): { id: number; payload: Buffer | string } {
    const compressor = this.compressor;
    // A string has at least length bytes in UTF-8 and at most three times as many.
    if (compressor === undefined || (typeof data === 'string' ? data.length * 3 : data.length) < this.threshold) {
      return { id: 0, payload: data };
    }
    const bytes = toBuffer(data);
    if (bytes.length < this.threshold || bytes.length > MAX_DECOMPRESSED_BYTES) return { id: 0, payload: data };
    const compressed = compressor.compress(bytes);
    // Unprotected, a compressed entry pays for a header a plain one does not have.
    const overhead = this.protects ? 0 : HEADER_BYTES;
    return compressed.length + overhead < bytes.length
      ? { id: this.compressionId, payload: compressed }
      : { id: 0, payload: data };
  }

  private decompress(key: string, id: number, payload: Buffer): Buffer {
    if (id === 0) return payload;
    const compressor = COMPRESSORS.get(id);
    if (compressor === undefined) throw this.unreadable(key, `names an unknown compression (${id})`);
    if (typeof compressor === 'string') {
      throw new CacheSerializationError(
        `${this.label}: the entry for ${JSON.stringify(key)} is compressed with ${compressor}, which Node ${process.version} cannot decompress`,
      );
    }
    try {
      return compressor.decompress(payload);
    } catch (error) {
      throw new CacheSerializationError(
        `${this.label}: the entry for ${JSON.stringify(key)} cannot be decompressed (${compressor.name}): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  private header(protection: number, compression: number): Buffer {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    MAGIC.copy(header);
    header[FORMAT_AT] = (protection << 4) | compression;
    return header;
  }

  private protectedHeader(protection: number, compression: number, keyId: number, ttl: number): Buffer {
    const header = Buffer.allocUnsafe(PROTECTED_HEADER_BYTES);
    MAGIC.copy(header);
    header[FORMAT_AT] = (protection << 4) | compression;
    header.writeUInt32BE(keyId, HEADER_BYTES);
    header.writeBigUInt64BE(ttl === 0 ? 0n : BigInt(Date.now() + Math.ceil(ttl * 1000)), HEADER_BYTES + KEY_ID_BYTES);
    return header;
  }

  private sign(boundKey: string, compressed: { id: number; payload: Buffer | string }, ttl: number): Buffer {
    const { id, key } = this.integrity!.writer;
    const header = this.protectedHeader(PROTECTION.hmac, compressed.id, id, ttl);
    const payload = toBuffer(compressed.payload);
    return Buffer.concat([header, this.mac(key, boundKey, header, payload), payload]);
  }

  private mac(key: Buffer, boundKey: string, header: Buffer, payload: Buffer): Buffer {
    return createHmac('sha256', key).update(boundKeyBytes(boundKey)).update(header).update(payload).digest();
  }

  private verify(key: string, boundKey: string, data: Buffer): Buffer | undefined {
    const payloadAt = PROTECTED_HEADER_BYTES + MAC_BYTES;
    if (data.length < payloadAt) throw this.refused(key, 'malformed', 'is too short for a signed entry (truncated?)');
    const ring = this.integrity;
    if (ring === undefined && this.protects)
      throw this.refused(key, 'unknown-key', 'is signed, and this backend has no integrity keys');
    if (ring !== undefined) {
      const signer = ring.find(data.readUInt32BE(HEADER_BYTES));
      if (signer === undefined) throw this.refused(key, 'unknown-key', 'is signed with a key this backend does not hold');
      const header = data.subarray(0, PROTECTED_HEADER_BYTES);
      const expected = this.mac(signer.key, boundKey, header, data.subarray(payloadAt));
      if (!timingSafeEqual(expected, data.subarray(PROTECTED_HEADER_BYTES, payloadAt))) {
        throw this.refused(key, 'tampered', 'fails its signature: changed, or moved from another key');
      }
      if (this.expired(data)) return undefined;
    }
    // Without integrity keys (turned off), signed entries stay readable, like plain ones.
    return data.subarray(payloadAt);
  }

  private encrypt(boundKey: string, compressed: { id: number; payload: Buffer | string }, ttl: number): Buffer {
    const { id, key } = this.encryption!.writer;
    const header = this.protectedHeader(PROTECTION.aes, compressed.id, id, ttl);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.concat([boundKeyBytes(boundKey), header]));
    const encrypted = Buffer.concat([cipher.update(toBuffer(compressed.payload)), cipher.final()]);
    return Buffer.concat([header, nonce, cipher.getAuthTag(), encrypted]);
  }

  private decrypt(key: string, boundKey: string, data: Buffer): Buffer | undefined {
    const nonceAt = PROTECTED_HEADER_BYTES;
    const tagAt = nonceAt + NONCE_BYTES;
    const payloadAt = tagAt + TAG_BYTES;
    if (data.length < payloadAt) throw this.refused(key, 'malformed', 'is too short for an encrypted entry (truncated?)');
    const owner = this.encryption?.find(data.readUInt32BE(HEADER_BYTES));
    if (owner === undefined) throw this.refused(key, 'unknown-key', 'is encrypted with a key this backend does not hold');
    const header = data.subarray(0, PROTECTED_HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', owner.key, data.subarray(nonceAt, tagAt))
      .setAAD(Buffer.concat([boundKeyBytes(boundKey), header]))
      .setAuthTag(data.subarray(tagAt, payloadAt));
    let payload: Buffer;
    try {
      payload = Buffer.concat([decipher.update(data.subarray(payloadAt)), decipher.final()]);
    } catch {
      throw this.refused(key, 'tampered', 'fails to decrypt: changed, or moved from another key');
    }
    return this.expired(data) ? undefined : payload;
  }

  /** Past its signed expiry: a replayed old entry, or one the server has not dropped yet. */
  private expired(data: Buffer): boolean {
    const expiresAt = this.expiresAt(data);
    return expiresAt !== 0 && expiresAt <= Date.now();
  }

  private refused(key: string, reason: CacheIntegrityReason, what: string): CacheIntegrityError {
    return new CacheIntegrityError(
      `${this.label}: the entry for ${JSON.stringify(key)} ${what}; it is treated as a miss`,
      reason,
      key,
    );
  }

  /** A framed entry that is not well formed: an integrity failure when keys are required, else undecodable. */
  private unreadable(key: string, what: string): CacheSerializationError {
    if (this.protects) return this.refused(key, 'malformed', what);
    return new CacheSerializationError(`${this.label}: the entry for ${JSON.stringify(key)} ${what}`);
  }
}
