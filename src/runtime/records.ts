import { randomBytes } from 'node:crypto';
import { MISS, type CacheBackend, type MaybePromise } from '../backends/backend.js';
import { CacheSerializationError } from '../errors.js';
import { isThenable } from './call-site.js';

/*
 * Records: what makes entries invalidatable in O(1). A method's generation and each tag are a
 * record in the backend holding a token; an entry stored under records carries the tokens they
 * held when its value was computed, and is served only while every record still holds its token.
 * Invalidation replaces or deletes a record; a record found missing (deleted, evicted by an LRU,
 * lost in a failover or a flush) is recreated with a token never used before. Either way the
 * entries stamped with the old token can no longer be proven current, so they miss: losing a
 * record errs toward a miss, never toward an invalidated value.
 */

const STAMPS = '__hoardStamps';

/** An entry stored under records: the value and, aligned with the records, the tokens it was computed under. */
interface Stamped {
  [STAMPS]: readonly string[];
  value: unknown;
}

export function isStamped(entry: unknown): entry is Stamped {
  return Array.isArray((entry as Stamped | null)?.[STAMPS]);
}

export function stamped(value: unknown, tokens: readonly string[]): Stamped {
  return { [STAMPS]: tokens, value };
}

/** A token no record held before: 96 random bits. */
export function newToken(): string {
  return randomBytes(12).toString('base64url');
}

/** What a checked read found. */
export interface Checked {
  /** The stored value, or {@link MISS} when absent or not proven current. */
  entry: unknown;
  /** The records' current tokens: what a value computed now is stored under. */
  tokens: readonly string[];
  /** Why a stored value could not be read (tampered, corrupt), if one could not: a miss, to report. */
  unreadable?: CacheSerializationError;
}

/** A stored value that cannot be decoded: an entry that misses, or a record that is lost. */
class Unreadable {
  constructor(readonly error: CacheSerializationError) {}
}

function readable(read: MaybePromise<unknown>): Promise<unknown> {
  return Promise.resolve(read).catch((error: unknown) => {
    if (error instanceof CacheSerializationError) return new Unreadable(error);
    throw error;
  });
}

/**
 * Reads `key` and its `records` in one batch: one MGET on Redis (lookups of a tick are sent
 * together), one round of requests on Memcached, plain calls on a synchronous backend.
 */
export function readChecked(backend: CacheBackend, key: string, records: readonly string[]): MaybePromise<Checked> {
  if (backend.synchronous) {
    const entry = backend.lookup(key);
    return check(backend, entry, records.map((record) => backend.lookup(record)), records);
  }
  return Promise.all([readable(backend.lookup(key)), ...records.map((record) => readable(backend.lookup(record)))]).then(([entry, ...found]) =>
    check(backend, entry, found, records),
  );
}

function check(backend: CacheBackend, entry: unknown, found: readonly unknown[], records: readonly string[]): MaybePromise<Checked> {
  let pending = false;
  const tokens = found.map((token, i) => {
    if (typeof token === 'string') return token;
    const recreated = recreate(backend, records[i]!, token);
    pending ||= typeof recreated !== 'string';
    return recreated;
  });
  if (!pending) return verdict(entry, tokens as string[], found);
  return Promise.all(tokens).then((settled) => verdict(entry, settled, found));
}

/**
 * A record that is missing (or holds anything but a token) gets a token never used before. Of
 * processes recreating it at once, one `add` wins and the others take its token, so that they
 * store values under it (and a process waiting on a lock finds the holder's value valid).
 */
function recreate(backend: CacheBackend, record: string, found: unknown): MaybePromise<string> {
  const token = newToken();
  if (found !== MISS) return then(backend.set(record, token, 0), () => token);
  return then(backend.add(record, token, 0), (added) =>
    added ? token : then(backend.lookup(record), (winner) => (typeof winner === 'string' ? winner : token)),
  );
}

function verdict(entry: unknown, tokens: readonly string[], found: readonly unknown[]): Checked {
  let current = isStamped(entry) && entry[STAMPS].length === tokens.length;
  for (let i = 0; current && i < tokens.length; i++) current = (entry as Stamped)[STAMPS][i] === tokens[i];
  const checked: Checked = { entry: current ? (entry as Stamped).value : MISS, tokens };
  const unreadable = [entry, ...found].find((value): value is Unreadable => value instanceof Unreadable);
  if (unreadable !== undefined) checked.unreadable = unreadable.error;
  return checked;
}

function then<T, R>(value: MaybePromise<T>, next: (resolved: T) => MaybePromise<R>): MaybePromise<R> {
  return isThenable(value) ? Promise.resolve(value).then(next) : next(value as T);
}
