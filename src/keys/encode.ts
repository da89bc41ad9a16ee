import { CacheKeyError } from '../errors.js';

/**
 * Canonical argument encoding. Every value maps to a token that is self-delimiting inside
 * its container, so the concatenation is injective: strings are always quoted (JSON escapes),
 * numbers are bare, every other kind starts with its own tag letter:
 *
 *   null N · undefined u · true t · false f · 1n → 1n · -0 → 0 · Date D<ms> · RegExp R"/a/g"
 *   [..] arrays · {"k":v} objects, keys sorted, undefined properties left out
 *   M[k:v,..] Maps and S[..] Sets, entries sorted by their encoding (content, not insertion order)
 *   B<base64> Buffer/Uint8Array (same bytes, same key) · T<Type>(<base64>) other typed arrays
 *   A(<base64>) ArrayBuffer/SharedArrayBuffer · @Number(1) boxed primitives by their value
 *   @<Class>{..} class instances by their own enumerable data, @<Class>(..) via their toJSON
 *
 * The result is deterministic across processes: nothing depends on addresses, insertion order
 * or the run.
 */

/** Why a value could not be encoded; turned into a CacheKeyError naming the argument. */
class Unencodable extends Error {}

/** Ancestors of the value being encoded, for cycle detection; reused so a hit allocates nothing. */
const ancestors: object[] = [];

/**
 * How deeply containers (arrays, objects, Maps, Sets, …) may nest inside one argument. The
 * encoder recurses a few stack frames a level; far deeper structures would overflow the stack
 * (a RangeError near 1,600 levels) instead of being refused by name.
 */
export const MAX_NESTING = 256;

/** Kinds that have no stable content to key on. */
const REJECTED = [WeakMap, WeakSet, WeakRef, Promise, Error, Symbol] as const;

/** `prefix` followed by the arguments' encoding, as one flat string (see {@link flat}). */
export function encodeArguments(args: ArrayLike<unknown>, method: string, prefix = ''): string {
  let out = prefix;
  for (let i = 0; i < args.length; i++) {
    if (i > 0) out += ',';
    try {
      out += encode(args[i]);
    } catch (error) {
      ancestors.length = 0;
      if (error instanceof Unencodable) throw new CacheKeyError(method, i, error.message);
      throw error;
    }
  }
  return flat(out);
}

/**
 * `text` with its characters in one piece. A string built with `+` is a rope in V8 (a cons
 * string), and a Map hashes and compares a rope by walking it on every lookup; reading one
 * character flattens it in place, once (the memory hit of docs/benchmarks.md).
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** A character JSON.stringify may escape: a control character, quote, backslash, or a surrogate (it escapes lone ones). */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * `JSON.stringify(text)`, without calling into it for the usual text that needs no escape.
 * A regular expression rather than a loop over `charCodeAt`: in bench/'s miss workload perf
 * showed the loop's loads compiled to calls of V8's generic load IC; the expression has none.
 */
function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"';
}

/** Property names seen recently, quoted and with their colon: objects of one shape repeat them on every call. */
const propertyNames = new Map<string, string>();
const MAX_PROPERTY_NAMES = 1024;

/**
 * `quote(key) + ':'`, kept for the next object with that property: building it allocated
 * three strings per property on every call (the memory miss of docs/benchmarks.md).
 */
function propertyName(key: string): string {
  let name = propertyNames.get(key);
  if (name === undefined) {
    // Objects keyed by data (ids as property names) would fill it with names never seen again.
    if (propertyNames.size === MAX_PROPERTY_NAMES) propertyNames.clear();
    name = flat(quote(key) + ':');
    propertyNames.set(key, name);
  }
  return name;
}

function encode(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      // `0 === -0`, so both become '0'; NaN and ±Infinity print as words no string can be.
      return value === 0 ? '0' : String(value);
    case 'boolean':
      return value ? 't' : 'f';
    case 'undefined':
      return 'u';
    case 'bigint':
      return `${value}n`;
    case 'object':
      return value === null ? 'N' : encodeObject(value);
    default:
      throw new Unencodable(`is a ${typeof value}`);
  }
}

function encodeObject(value: object): string {
  if (ancestors.length === MAX_NESTING) throw new Unencodable(`is nested more than ${MAX_NESTING} levels deep`);
  if (ancestors.includes(value)) throw new Unencodable('is a circular structure');
  ancestors.push(value);
  const out = encodeContainer(value);
  ancestors.pop();
  return out;
}

function encodeContainer(value: object): string {
  if (Array.isArray(value)) return encodeArray(value);
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return encodeProperties(value);
  if (value instanceof Date) return `D${value.getTime()}`;
  if (value instanceof Map) return `M[${sortedPairs(value)}]`;
  if (value instanceof Set) return `S[${sortedTokens(value)}]`;
  if (ArrayBuffer.isView(value)) return encodeBytes(value);
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return `A(${Buffer.from(value).toString('base64')})`;
  if (value instanceof RegExp) return `R${JSON.stringify(String(value))}`;
  for (const type of REJECTED) {
    if (value instanceof type) throw new Unencodable(`is a ${type.name}`);
  }
  const name = typeof proto?.constructor === 'function' ? proto.constructor.name : '';
  // A boxed primitive keeps its value in an internal slot, not in properties: key it by that value.
  if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) {
    return `@${name}(${encode(value.valueOf())})`;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return `@${name}(${encode(toJSON.call(value))})`;
  return `@${name}${encodeProperties(value)}`;
}

function encodeArray(items: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ',';
    out += encode(items[i]);
  }
  return out + ']';
}

function encodeProperties(value: object): string {
  const keys = Object.keys(value);
  // Object.keys skips symbol keys; leaving them out would merge objects that differ only there.
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol))
      throw new Unencodable(`has a symbol-keyed property ${String(symbol)}`);
  }
  if (keys.length > 1) keys.sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += propertyName(key) + encode(item);
  }
  return out + '}';
}

function encodeBytes(view: ArrayBufferView): string {
  const base64 = Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
  if (view instanceof Uint8Array) return `B${base64}`;
  if (view instanceof DataView) return `TDataView(${base64})`;
  return `T${view.constructor.name}(${base64})`;
}

function sortedPairs(map: Map<unknown, unknown>): string {
  const pairs: string[] = [];
  for (const [key, item] of map) pairs.push(encode(key) + ':' + encode(item));
  return pairs.sort().join(',');
}

function sortedTokens(set: Set<unknown>): string {
  const tokens: string[] = [];
  for (const item of set) tokens.push(encode(item));
  return tokens.sort().join(',');
}
