import { types } from 'node:util';
import { CacheSerializationError } from '../errors.js';
import type { Serializer } from './serializer.js';

/*
 * Wire format.
 *
 * Plain JSON data (strings, finite numbers other than -0, booleans, null, arrays without
 * holes, plain objects; nothing else anywhere inside) is stored as its `JSON.stringify`
 * text: the common case costs one walk plus one native stringify/parse, and other programs
 * can read the entries.
 *
 * Anything else is stored as `~` followed by the JSON of an encoded tree in which every value
 * JSON cannot carry is an object whose own TAG key names its type: `{"~":"Date","v":0}`.
 * A user object that has the TAG key itself is wrapped as `{"~":"object","v":{...}}`, so no
 * user data is ever read as a tag. JSON text never starts with `~`, so the first byte tells
 * the two forms apart.
 */
const TAGGED_MARKER = '~';
const TAGGED_MARKER_BYTE = TAGGED_MARKER.charCodeAt(0);
const TAG = '~';

/** Deeper plain data takes the tagged path, whose walk detects cycles and names paths. */
const PLAIN_DEPTH_LIMIT = 64;

/** Where the walk is: an object key, an array index, or a position inside a Map or Set. */
type Segment = string | number | MapKeySegment | MapValueSegment | SetSegment;
interface MapKeySegment {
  readonly map: 'key';
  readonly index: number;
}
interface MapValueSegment {
  readonly map: 'value';
  readonly index: number;
  readonly key: unknown;
}
interface SetSegment {
  readonly set: number;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function formatPath(segments: readonly Segment[]): string {
  let path = 'value';
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (typeof segment === 'string') {
      path += IDENTIFIER.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    } else if ('set' in segment) path += `.values()[${segment.set}]`;
    else if (segment.map === 'key') path += `.keys()[${segment.index}]`;
    else path += `.get(${formatMapKey(segment.key, segment.index)})`;
  }
  return path;
}

function formatMapKey(key: unknown, index: number): string {
  switch (typeof key) {
    case 'string':
      return JSON.stringify(key);
    case 'bigint':
      return `${key}n`;
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(key);
    default:
      return key === null ? 'null' : `<key #${index}>`;
  }
}

/**
 * Defines `key` as an own data property. Plain assignment of `__proto__` would set the
 * object's prototype instead, which is how hostile payloads pollute prototypes.
 */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** Finite and not -0: JSON writes NaN and ±Infinity as null, and -0 as 0. */
function isJsonNumber(value: number): boolean {
  // value - value is NaN for NaN and ±Infinity.
  return value - value === 0 && (value !== 0 || 1 / value > 0);
}

/** True when `JSON.stringify(value)` alone stores `value` exactly and unambiguously. */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return isJsonNumber(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth === PLAIN_DEPTH_LIMIT) return false;
  if (Array.isArray(value)) {
    // JSON.stringify would store what an array's own toJSON returns, unchecked.
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
    // A hole reads as undefined, which is not plain, so holey arrays take the tagged path.
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const object = value as Record<string, unknown>;
  // for-in is the fastest key walk; Object.prototype has no enumerable keys in sane programs,
  // and when it has, they are only checked too. A toJSON method fails the check as a function.
  // The tag key needs no check: plain payloads are never read for tags.
  for (const key in object) if (!isPlainJson(object[key], depth + 1)) return false;
  return true;
}

/** Names a built-in JSON would silently turn into `{}` (or an object of indices). */
function unsupportedKind(value: object): string | undefined {
  if (
    types.isPromise(value) ||
    types.isWeakMap(value) ||
    types.isWeakSet(value) ||
    value instanceof WeakRef ||
    types.isRegExp(value) ||
    types.isNativeError(value) ||
    types.isAnyArrayBuffer(value) ||
    types.isArrayBufferView(value) ||
    types.isGeneratorObject(value) ||
    types.isMapIterator(value) ||
    types.isSetIterator(value)
  ) {
    return Object.prototype.toString.call(value).slice(8, -1);
  }
  return undefined;
}

function article(kind: string): string {
  return /^[AEIOU]/i.test(kind) ? `an ${kind}` : `a ${kind}`;
}

function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Turns a value into a JSON-safe tree of tags; one instance per `serialize` call. */
class Encoder {
  private readonly path: Segment[] = [];
  /** Objects being encoded, with the path depth where each was entered, to name cycles. */
  private readonly ancestors = new Map<object, number>();

  /**
   * Encodes the value found at the current path, under property `key` of its holder
   * (what JSON passes to `toJSON`). Segments are pushed by the caller and popped only on
   * success, so when something throws, `path` still points at the culprit.
   */
  encode(value: unknown, key: string, afterToJson = false): unknown {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (isJsonNumber(value)) return value;
        return { [TAG]: 'number', v: Object.is(value, -0) ? '-0' : String(value) };
      case 'bigint':
        return { [TAG]: 'BigInt', v: value.toString() };
      case 'undefined':
        return { [TAG]: 'undefined' };
      case 'function':
        throw this.fail('it is a function');
      case 'symbol':
        throw this.fail('it is a symbol');
    }
    if (value === null) return null;
    const object = value as object;

    if (types.isDate(object)) {
      const time = object.getTime();
      return { [TAG]: 'Date', v: Number.isNaN(time) ? null : time };
    }
    if (Buffer.isBuffer(object)) return { [TAG]: 'Buffer', v: object.toString('base64') };
    if (types.isUint8Array(object)) return { [TAG]: 'Uint8Array', v: bytesToBase64(object) };
    if (types.isBoxedPrimitive(object)) return this.encode(object.valueOf(), key, afterToJson);
    if (!afterToJson && typeof (object as { toJSON?: unknown }).toJSON === 'function') {
      // Like JSON.stringify: the result is encoded as is, its own toJSON is not called.
      return this.encode((object as { toJSON(key: string): unknown }).toJSON(key), key, true);
    }
    const kind = unsupportedKind(object);
    if (kind !== undefined) throw this.fail(`it is ${article(kind)}`);

    const entered = this.ancestors.get(object);
    if (entered !== undefined) {
      throw this.fail(`it is a circular reference to ${formatPath(this.path.slice(0, entered))}`);
    }
    this.ancestors.set(object, this.path.length);
    const encoded = this.encodeContainer(object);
    this.ancestors.delete(object);
    return encoded;
  }

  private encodeContainer(object: object): unknown {
    const { path } = this;
    if (types.isMap(object)) {
      const entries: unknown[] = [];
      let index = 0;
      for (const [key, value] of object) {
        path.push({ map: 'key', index });
        const encodedKey = this.encode(key, '');
        path[path.length - 1] = { map: 'value', index, key };
        entries.push([encodedKey, this.encode(value, '')]);
        path.pop();
        index++;
      }
      return { [TAG]: 'Map', v: entries };
    }
    if (types.isSet(object)) {
      const elements: unknown[] = [];
      for (const element of object) {
        path.push({ set: elements.length });
        elements.push(this.encode(element, ''));
        path.pop();
      }
      return { [TAG]: 'Set', v: elements };
    }
    if (Array.isArray(object)) {
      const elements: unknown[] = new Array(object.length);
      for (let i = 0; i < object.length; i++) {
        if (!Object.hasOwn(object, i)) {
          elements[i] = { [TAG]: 'hole' };
          continue;
        }
        path.push(i);
        elements[i] = this.encode(object[i], String(i));
        path.pop();
      }
      return elements;
    }
    // A plain object or a class instance: its own enumerable string keys, as JSON does.
    const source = object as Record<string, unknown>;
    const encoded: Record<string, unknown> = {};
    for (const key of Object.keys(source)) {
      path.push(key);
      setOwn(encoded, key, this.encode(source[key], key));
      path.pop();
    }
    return Object.hasOwn(source, TAG) ? { [TAG]: 'object', v: encoded } : encoded;
  }

  fail(reason: string, cause?: unknown): CacheSerializationError {
    return new CacheSerializationError(
      `Cannot serialize ${formatPath(this.path)}: ${reason}. Cache plain data (JSON values, ` +
        'undefined, Date, BigInt, Map, Set, Buffer, Uint8Array) or give the backend a `serializer` that handles it.',
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Rebuilds values from a parsed tagged tree, trusting nothing in it. */
class Decoder {
  private readonly path: Segment[] = [];

  decode(node: unknown): unknown {
    if (typeof node !== 'object' || node === null) return node;
    if (Array.isArray(node)) return this.decodeArray(node);
    const object = node as Record<string, unknown>;
    return Object.hasOwn(object, TAG) ? this.decodeTag(object) : this.decodeObject(object);
  }

  private decodeArray(nodes: readonly unknown[]): unknown[] {
    const array: unknown[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (isTag(node, 'hole')) {
        array.length = i + 1;
      } else {
        this.path.push(i);
        array.push(this.decode(node));
        this.path.pop();
      }
    }
    return array;
  }

  private decodeObject(object: Record<string, unknown>): Record<string, unknown> {
    const decoded: Record<string, unknown> = {};
    for (const key of Object.keys(object)) {
      this.path.push(key);
      setOwn(decoded, key, this.decode(object[key]));
      this.path.pop();
    }
    return decoded;
  }

  private decodeTag(tag: Record<string, unknown>): unknown {
    const v = tag.v;
    // A switch, not a lookup table: a tag named `constructor` or `__proto__` must not
    // reach anything on a prototype.
    switch (tag[TAG]) {
      case 'undefined':
        return undefined;
      case 'number':
        switch (v) {
          case 'NaN':
            return NaN;
          case 'Infinity':
            return Infinity;
          case '-Infinity':
            return -Infinity;
          case '-0':
            return -0;
        }
        throw this.fail('a number tag holds NaN, Infinity, -Infinity or -0');
      case 'BigInt':
        if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
        throw this.fail('a BigInt tag holds a string of decimal digits');
      case 'Date':
        if (v === null) return new Date(NaN);
        if (typeof v === 'number') return new Date(v);
        throw this.fail('a Date tag holds a number or null');
      case 'Buffer':
        return Buffer.from(this.base64(v), 'base64');
      case 'Uint8Array':
        return new Uint8Array(Buffer.from(this.base64(v), 'base64'));
      case 'Map':
        return this.decodeMap(v);
      case 'Set':
        if (!Array.isArray(v)) throw this.fail('a Set tag holds an array');
        return new Set(
          v.map((element: unknown, index) => {
            this.path.push({ set: index });
            const decoded = this.decode(element);
            this.path.pop();
            return decoded;
          }),
        );
      case 'object':
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.fail('an object tag holds an object');
        return this.decodeObject(v as Record<string, unknown>);
      case 'hole':
        throw this.fail('a hole tag appears outside an array');
      default:
        throw this.fail(`unknown tag ${JSON.stringify(tag[TAG])}`);
    }
  }

  private decodeMap(entries: unknown): Map<unknown, unknown> {
    if (!Array.isArray(entries)) throw this.fail('a Map tag holds an array of entries');
    const map = new Map<unknown, unknown>();
    entries.forEach((entry: unknown, index) => {
      if (!Array.isArray(entry) || entry.length !== 2) throw this.fail('a Map entry is a [key, value] pair');
      this.path.push({ map: 'key', index });
      const key = this.decode(entry[0]);
      this.path[this.path.length - 1] = { map: 'value', index, key };
      map.set(key, this.decode(entry[1]));
      this.path.pop();
    });
    return map;
  }

  private base64(v: unknown): string {
    if (typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v)) return v;
    throw this.fail('a byte tag holds base64 text');
  }

  fail(reason: string, cause?: unknown): CacheSerializationError {
    return new CacheSerializationError(
      `Cannot deserialize a cached entry at ${formatPath(this.path)}: ${reason}. ` +
        'It was not written by this serializer, or was corrupted.',
      cause === undefined ? undefined : { cause },
    );
  }
}

function isTag(node: unknown, name: string): boolean {
  if (typeof node !== 'object' || node === null || !Object.hasOwn(node, TAG)) return false;
  return (node as Record<string, unknown>)[TAG] === name;
}

function serialize(value: unknown): string {
  let plain: boolean;
  try {
    plain = isPlainJson(value, 0);
  } catch {
    // A throwing getter: the tagged walk meets it again and can name its path.
    plain = false;
  }
  if (plain) return JSON.stringify(value);
  const encoder = new Encoder();
  let tree: unknown;
  try {
    tree = encoder.encode(value, '');
  } catch (error) {
    if (error instanceof CacheSerializationError) throw error;
    // A throwing getter or toJSON, or nesting deeper than the stack.
    throw encoder.fail(error instanceof Error ? error.message : String(error), error);
  }
  return TAGGED_MARKER + JSON.stringify(tree);
}

function deserialize(data: Buffer): unknown {
  const text = data.toString('utf8');
  const tagged = text.charCodeAt(0) === TAGGED_MARKER_BYTE;
  try {
    // JSON.parse defines every key, `__proto__` included, as an own data property.
    const parsed: unknown = JSON.parse(tagged ? text.slice(1) : text);
    return tagged ? new Decoder().decode(parsed) : parsed;
  } catch (error) {
    if (error instanceof CacheSerializationError) throw error;
    throw new Decoder().fail(error instanceof Error ? error.message : String(error), error);
  }
}

/**
 * The serializer remote backends use unless given another one.
 *
 * Round-trips JSON values plus `undefined` (also as an object property or array element),
 * array holes, `NaN`, `±Infinity`, `-0`, `BigInt`, `Date` (invalid ones too), `Map` (any keys,
 * insertion order kept), `Set`, `Buffer` (back as a `Buffer`) and `Uint8Array` (back as a
 * `Uint8Array`), nested in any way. Objects whose keys look like its type tags round-trip too.
 *
 * Like `JSON.stringify`: `toJSON` is honoured, class instances are stored as their own
 * enumerable properties and come back as plain objects, and an object reached twice is stored
 * twice (shared references become copies). Unlike it, functions, symbols, circular
 * structures and built-ins JSON would turn into `{}` (WeakMap, WeakSet, WeakRef, Promise,
 * RegExp, Error, ArrayBuffer, other typed arrays, DataView, iterators) throw a
 * {@link CacheSerializationError} naming the path, e.g. `value.items[3]`.
 *
 * Plain JSON data is stored as its JSON text, so other programs can read it. Decoding never
 * evaluates code, and keys such as `__proto__` come back as own data properties: a payload
 * cannot pollute prototypes. A malformed payload throws a {@link CacheSerializationError}.
 */
export const defaultSerializer: Serializer = Object.freeze({ serialize, deserialize });
