import { createHash, randomInt } from 'node:crypto';
import { CacheArgumentError } from '../../errors.js';
import { MAX_KEY_TOKEN } from './protocol.js';

/**
 * The longest binary key sent as is: its base64 (4 characters per 3 bytes, rounded up) must
 * fit memcached's 250-character key token. 186 bytes → 248 characters.
 */
export const MAX_DIRECT_KEY_BYTES = Math.floor(MAX_KEY_TOKEN / 4) * 3;

/** Longest backend `prefix`, in UTF-8 bytes, so that a hashed key always fits. */
const MAX_PREFIX_BYTES = 128;

interface MaybeWellFormed {
  /** ES2024, present on Node ≥ 20: false when the string holds a lone surrogate. */
  isWellFormed(): boolean;
}

/**
 * How a backend's keys are laid out on a memcached server. For `prefix` P and generation G
 * (a number kept on each server under P, see {@link generationToken}), hoard key K is stored as
 *
 * - `P G ":" K` in UTF-8 when that is at most {@link MAX_DIRECT_KEY_BYTES} bytes and K is
 *   well-formed Unicode;
 * - `P G "#" sha256(K as UTF-16 code units)` (32 raw bytes) otherwise.
 *
 * and then base64-encoded for the wire. The two forms differ in the byte after G, and the
 * generation key (`P "#generation"`) has no digit there, so no key can reach another one or
 * the generation; only a SHA-256 collision could make two long keys share an entry. Hashing
 * the UTF-16 code units keeps strings with lone surrogates apart, which UTF-8 would merge
 * (both become U+FFFD).
 */
export class Keyspace {
  /** The base64 key token of this prefix's generation number. */
  readonly generationToken: string;

  constructor(readonly prefix: string) {
    if (Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) {
      throw new CacheArgumentError(
        `MemcachedBackend: prefix must be at most ${MAX_PREFIX_BYTES} bytes in UTF-8, got ${Buffer.byteLength(prefix)}`,
      );
    }
    this.generationToken = Buffer.from(`${prefix}#generation`).toString('base64');
  }

  /** The base64 key token for hoard key `key` under `generation`. */
  token(generation: number, key: string): string {
    const direct = Buffer.from(`${this.prefix}${generation}:${key}`);
    if (direct.length <= MAX_DIRECT_KEY_BYTES && (key as unknown as MaybeWellFormed).isWellFormed()) {
      return direct.toString('base64');
    }
    const digest = createHash('sha256').update(Buffer.from(key, 'utf16le')).digest();
    return Buffer.concat([Buffer.from(`${this.prefix}${generation}#`), digest]).toString('base64');
  }
}

/** A fresh generation: random, so a generation lost with its server never comes back by chance. */
export function newGeneration(): number {
  return randomInt(1, 2 ** 48);
}

/** memcached reads an expiry above this (30 days) as a Unix time, not as seconds from now. */
export const RELATIVE_EXPIRY_LIMIT = 30 * 24 * 60 * 60;
/** memcached's expiry is a signed 32-bit Unix time: beyond it, an item expires at once. */
const LATEST_EXPIRY = 2 ** 31 - 1;

/** memcached's `exptime` for `seconds` from now: relative up to 30 days, a Unix time beyond. */
function exptime(seconds: number, nowMs: number): number {
  if (seconds <= RELATIVE_EXPIRY_LIMIT) return seconds;
  return Math.min(Math.ceil(nowMs / 1000) + seconds, LATEST_EXPIRY);
}

/**
 * The expiry to send for a ttl in seconds, such that the entry never expires early: `0`
 * (never) stays 0; otherwise whole seconds, rounded up, plus one, because memcached's clock
 * ticks once a second and a relative expiry of n lasts until the n-th tick, which may be only
 * n − 1 seconds away (an item set with 1 lives between 0 and 1 s). Beyond 30 days memcached
 * wants a Unix time, capped at 2038-01-19, the latest its 32-bit clock can store.
 */
export function expiryOf(ttl: number, nowMs = Date.now()): number {
  return ttl === 0 ? 0 : exptime(Math.ceil(ttl) + 1, nowMs);
}

/**
 * The expiry that keeps an entry's current one, from the `t` (remaining seconds, `-1` for
 * never) that `mg` returned: a rewrite then ends on the same clock tick.
 */
export function expiryRemaining(remaining: number, nowMs = Date.now()): number {
  return remaining < 0 ? 0 : exptime(Math.max(remaining, 1), nowMs);
}

/**
 * Integers are stored as memcached counters so that `ma` can add to them atomically. `ma` only
 * knows unsigned 64-bit numbers and stops at 0, so a counter holds value + 2^63: the whole
 * safe-integer range, negatives included, moves by `ma` without ever clamping.
 */
const COUNTER_OFFSET = 2n ** 63n;

/** Client flags telling the two value formats apart. `ma` creates counters with flags 0. */
export const COUNTER_FLAGS = 0;
export const SERIALIZED_FLAGS = 1;

/** True for the values stored as counters: safe integers (not -0, which a counter cannot keep). */
export function isCounterValue(value: unknown): value is number {
  return Number.isSafeInteger(value) && !Object.is(value, -0);
}

export function counterDigits(value: number): string {
  return (COUNTER_OFFSET + BigInt(value)).toString();
}

export function counterValue(digits: Buffer): number {
  return Number(BigInt(digits.toString('latin1')) - COUNTER_OFFSET);
}
