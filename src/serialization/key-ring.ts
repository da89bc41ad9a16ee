import { hkdfSync } from 'node:crypto';
import { CacheArgumentError } from '../errors.js';

/** A secret of at least 32 bytes: random bytes, or a string of them (UTF-8). */
export type CacheSecret = Buffer | Uint8Array | string;

/** `integrity` and `encryption` of a remote backend: the first key writes, every key reads. */
export interface CacheKeysOptions {
  /**
   * `[current, ...previous]`: entries are written under `keys[0]` and read under any of them, so
   * keys rotate without a flush (docs/security.md: add the new key second, then first, then drop
   * the old one). Each secret must have at least 32 bytes; derive one from a passphrase with
   * `scrypt` or `hkdf` (docs/security.md has both).
   */
  keys: readonly CacheSecret[];
}

/** 256 bits: the key size of both HMAC-SHA256 and AES-256. */
export const MIN_SECRET_BYTES = 32;
/** Bytes of a key's fingerprint in an entry's header: tells which key to use without trying each. */
export const KEY_ID_BYTES = 4;

/** A secret turned into the key for one use, with the fingerprint that names it in entries. */
export interface DerivedKey {
  readonly id: number;
  readonly key: Buffer;
}

/**
 * The keys of one option (`integrity` or `encryption`). Each secret is run through HKDF with the
 * option's name, so one secret given to both options still yields unrelated keys, and the
 * fingerprint stored in entries reveals nothing about the key.
 */
export class KeyRing {
  /** The key new entries are written under. */
  readonly writer: DerivedKey;
  private readonly byId = new Map<number, DerivedKey>();

  constructor(label: string, purpose: 'integrity' | 'encryption', options: CacheKeysOptions) {
    const where = `${label}: ${purpose}.keys`;
    const secrets = (options as Partial<CacheKeysOptions> | null)?.keys;
    if (!Array.isArray(secrets) || secrets.length === 0) {
      throw new CacheArgumentError(`${where} must be a non-empty array of secrets ([current, ...previous])`);
    }
    const derived = secrets.map((secret: unknown, index) => {
      const bytes = secretBytes(secret, `${where}[${index}]`);
      const id = Buffer.from(hkdfSync('sha256', bytes, '', `hoard ${purpose} key id v1`, KEY_ID_BYTES)).readUInt32BE(0);
      if (this.byId.has(id))
        throw new CacheArgumentError(
          `${where}[${index}] is the same secret as an earlier one (or shares its fingerprint): give each key once`,
        );
      const key: DerivedKey = { id, key: Buffer.from(hkdfSync('sha256', bytes, '', `hoard ${purpose} v1`, 32)) };
      this.byId.set(id, key);
      return key;
    });
    this.writer = derived[0]!;
  }

  /** The key with this fingerprint, if this ring holds it. */
  find(id: number): DerivedKey | undefined {
    return this.byId.get(id);
  }
}

function secretBytes(secret: unknown, where: string): Buffer {
  let bytes: Buffer;
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8');
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  else
    throw new CacheArgumentError(
      `${where} must be a Buffer, Uint8Array or string of at least ${MIN_SECRET_BYTES} bytes, got ${secret === null ? 'null' : typeof secret}`,
    );
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new CacheArgumentError(
      `${where} has ${bytes.length} bytes; at least ${MIN_SECRET_BYTES} are needed. Use random bytes ` +
        '(crypto.randomBytes(32), `openssl rand -base64 32`), or derive them from a passphrase with scrypt (docs/security.md).',
    );
  }
  return bytes;
}
