import { randomBytes } from 'node:crypto';
import { MISS, type CacheBackend, type MaybePromise } from '../backends/backend.js';
import { CacheSerializationError } from '../errors.js';
import { isThenable, then } from '../maybe-promise.js';

/*
 * Records: what makes entries invalidatable in O(1). A method's generation and each tag are a
 * record in the backend holding a token; an entry stored under records carries the tokens they
 * held when its value was computed, and is served only while every record still holds its token.
 * Invalidation replaces or deletes a record; a record found missing (deleted, evicted by an LRU,
 * lost in a failover or a flush) is recreated with a token never used before. Either way the
 * entries stamped with the old token can no longer be proven current, so they miss: losing a
 * record errs toward a miss, never toward an invalidated value.
 *
 * Soft invalidation (`expireTags`, `expire`) gives a record a new token too, but keeps the
 * tokens it held before, with the moment their grace ends: `new~until~old.older`. An entry
 * stamped with one of those is stale, not gone: served while one refresh runs, until then. The
 * whole state is in the record, so losing it still errs toward a miss.
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

const NO_STAMPS: readonly string[] = [];

export function stamped(value: unknown, tokens: readonly string[]): Stamped {
  return { [STAMPS]: tokens, value };
}

/** A token no record held before: 96 random bits. */
export function newToken(): string {
  return randomBytes(12).toString('base64url');
}

/** Base64url tokens never hold these, so a record's parts are told apart without escaping. */
const PART = '~';
const TOKEN = '.';
/** Tokens an expired record keeps: past this many expiries without a refresh, the oldest entries miss. */
const KEPT_TOKENS = 8;

/** A record's state: its current token and, after a soft expiry, the tokens still served as stale. */
interface RecordState {
  token: string;
  /** Until when (ms since the epoch) entries stamped with `previous` may be served stale. */
  until: number;
  previous: readonly string[];
}

function parse(record: string): RecordState {
  if (!record.includes(PART)) return { token: record, until: 0, previous: [] };
  const [token = '', until = '0', previous = ''] = record.split(PART);
  return { token, until: Number(until), previous: previous.split(TOKEN) };
}

/**
 * What a record becomes when its entries expire softly: a new token, its current and still
 * servable previous ones kept, stale until `until`.
 */
function expiredRecord(record: string, until: number): string {
  const { token, until: before, previous } = parse(record);
  const kept = [token, ...(before > Date.now() ? previous : [])].slice(0, KEPT_TOKENS);
  return [newToken(), String(until), kept.join(TOKEN)].join(PART);
}

const EXPIRED = '__hoardExpiredUntil';

/** One entry expired softly (`CacheModule.expire` with arguments): served stale until the moment it holds. */
interface Expired {
  [EXPIRED]: number;
  entry: unknown;
}

export function isExpired(entry: unknown): entry is Expired {
  return typeof (entry as Expired | null)?.[EXPIRED] === 'number';
}

/** `entry` marked stale until `until` (ms since the epoch); marking it again keeps the first mark's entry. */
function expired(entry: unknown, until: number): Expired {
  return { [EXPIRED]: until, entry: isExpired(entry) ? entry.entry : entry };
}

/** What a checked read found. */
export interface Checked {
  /** The stored value, or {@link MISS} when absent or not proven current. */
  entry: unknown;
  /** The records' current tokens: what a value computed now is stored under (none without records). */
  tokens?: readonly string[];
  /** Why a stored value could not be read (tampered, corrupt), if one could not: a miss, to report. */
  unreadable?: CacheSerializationError;
  /** The entry was expired softly: serve it, and refresh it. */
  stale?: true;
}

/** What an entry expired softly still serves: the entry, or MISS once its grace ended. */
function withinGrace(entry: Expired): unknown {
  return entry[EXPIRED] > Date.now() ? entry.entry : MISS;
}

/**
 * What a lookup without records found, as served. A call site without records cannot check a
 * stamped entry (one that a site with records stored under a shared custom key): with
 * `refuseStamped`, that is a miss.
 */
export function readPlain(found: unknown, refuseStamped: boolean): Checked {
  const stale = isExpired(found);
  const entry = stale ? withinGrace(found) : found;
  const checked: Checked = { entry: refuseStamped && isStamped(entry) ? MISS : entry };
  if (stale && checked.entry !== MISS) checked.stale = true;
  return checked;
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
    return check(
      backend,
      entry,
      records.map((record) => backend.lookup(record)),
      records,
    );
  }
  return Promise.all([readable(backend.lookup(key)), ...records.map((record) => readable(backend.lookup(record)))]).then(
    ([entry, ...found]) => check(backend, entry, found, records),
  );
}

/**
 * The same read from what the backend holds in this process ({@link CacheBackend.peek}), without
 * a round trip: the entry and the records' tokens when the entry and every record are held and
 * the entry is current. Undefined otherwise (not held, not current, expired softly), and then
 * `readChecked` must be asked: only it may recreate a record, serve a stale entry or tell a miss.
 */
export function peekChecked(peek: (key: string) => unknown, key: string, records: readonly string[]): Checked | undefined {
  const entry = peek(key);
  if (!isStamped(entry)) return undefined;
  const stamps = entry[STAMPS];
  if (stamps.length !== records.length) return undefined;
  for (let i = 0; i < records.length; i++) if (peek(records[i]) !== stamps[i]) return undefined;
  return { entry: entry.value, tokens: stamps };
}

/** A record as read: its token, or after a soft expiry its parsed state. Plain tokens stay strings, so a hit allocates nothing for them. */
type Found = string | RecordState;

function stateOf(record: string): Found {
  return record.includes(PART) ? parse(record) : record;
}

function tokenOf(found: Found): string {
  return typeof found === 'string' ? found : found.token;
}

function check(
  backend: CacheBackend,
  entry: unknown,
  found: readonly unknown[],
  records: readonly string[],
): MaybePromise<Checked> {
  let plain = true;
  for (const record of found) plain &&= typeof record === 'string' && !record.includes(PART);
  if (plain) return verdict(entry, found as readonly string[], found);
  let pending = false;
  const states = found.map((record, i) => {
    if (typeof record === 'string') return stateOf(record);
    const recreated = then(recreate(backend, records[i], record), stateOf);
    pending ||= isThenable(recreated);
    return recreated;
  });
  if (!pending) return verdict(entry, states as Found[], found);
  return Promise.all(states).then((settled) => verdict(entry, settled, found));
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

function verdict(found: unknown, states: readonly Found[], records: readonly unknown[]): Checked {
  let entry = found;
  let stale = false;
  if (isExpired(found)) {
    entry = withinGrace(found);
    stale = true;
  }
  const stamps = isStamped(entry) ? entry[STAMPS] : NO_STAMPS;
  const first = states[0];
  // An entry stored before its method's generation came into play (a memory backend's method
  // expired for the first time) lacks that stamp: the record lists it as the empty token.
  const unstamped = stamps.length === states.length - 1 && typeof first !== 'string' && first.previous.includes('') ? 1 : 0;
  let current = entry !== MISS && stamps.length + unstamped === states.length && (unstamped === 1 || isStamped(entry));
  const tokens = states.some((state) => typeof state !== 'string') ? states.map(tokenOf) : (states as readonly string[]);
  for (let i = 0; current && i < states.length; i++) {
    const state = states[i];
    const stamp = i < unstamped ? '' : stamps[i - unstamped];
    if (stamp === tokenOf(state)) continue;
    current = typeof state !== 'string' && state.until > Date.now() && state.previous.includes(stamp);
    stale = true;
  }
  const checked: Checked = { entry: current ? (isStamped(entry) ? entry.value : entry) : MISS, tokens };
  if (current && stale) checked.stale = true;
  const unreadable =
    found instanceof Unreadable ? found : records.find((record): record is Unreadable => record instanceof Unreadable);
  if (unreadable !== undefined) checked.unreadable = unreadable.error;
  return checked;
}

/** An entry and, where the backend can tell it, the seconds it has left (0 = never expires). */
async function withTtl(backend: CacheBackend, key: string): Promise<{ value: unknown; ttl?: number } | typeof MISS> {
  if (backend.lookupWithTtl !== undefined) return backend.lookupWithTtl(key);
  // MemoryBackend tells it synchronously, outside the backend contract.
  const peek = (backend as { peekWithTtl?: (key: string) => unknown }).peekWithTtl;
  if (peek !== undefined) return peek.call(backend, key) as { value: unknown; ttl: number } | typeof MISS;
  const value = await backend.lookup(key);
  return value === MISS ? MISS : { value };
}

/**
 * Marks the entry at `key` stale for `grace` seconds, never past its own ttl where the backend
 * tells it; false when there is none. A store racing this rewrite may be overwritten by the older
 * value marked stale; the next call refreshes it.
 */
export async function expireEntry(backend: CacheBackend, key: string, grace: number): Promise<boolean> {
  const found = await withTtl(backend, key);
  if (found === MISS) return false;
  const seconds = found.ttl === undefined || found.ttl === 0 ? grace : Math.min(found.ttl, grace);
  await backend.set(key, expired(found.value, Date.now() + seconds * 1000), seconds);
  return true;
}

/**
 * Expires the entries stored under `record` softly. Where the backend can compare and delete,
 * the record is swapped only if it still holds what was read, so an invalidation that replaced or
 * deleted it meanwhile is never undone; between the delete and the add a reader may recreate it,
 * and then the entries miss, which errs the safe way. `unstamped`: the record was not in play
 * until now, so the entries to expire carry no stamp for it.
 */
export async function expireRecord(backend: CacheBackend, record: string, until: number, unstamped = false): Promise<void> {
  if (unstamped) {
    await backend.set(record, [newToken(), String(until), ''].join(PART), 0);
    return;
  }
  const current = await backend.lookup(record);
  // No record: whatever was stored under one misses already.
  if (typeof current !== 'string') return;
  const next = expiredRecord(current, until);
  if (backend.deleteIfEquals === undefined) await backend.set(record, next, 0);
  else if (await backend.deleteIfEquals(record, current)) await backend.add(record, next, 0);
}
