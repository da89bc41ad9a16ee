import fc from 'fast-check';

/**
 * Argument lists for the key properties, what SPEC §10 counts as "the same argument", and a
 * deep copy that changes only what must not matter. Shared by the property specs and by the
 * child process that checks the encoding is the same in another process.
 */

/** A user class: instances are keyed by their own enumerable data and their class name. */
export class Point {
  constructor(
    readonly x: unknown,
    readonly y: unknown,
  ) {}
}

/**
 * Characters that mean something to the encoding (separators, quotes, escapes, tag letters)
 * or to UTF-8/UTF-16 (lone and paired surrogates, combining marks, line separators). Short
 * strings over this small alphabet collide with each other often, which is what a test of
 * "distinct arguments, distinct keys" needs.
 */
const TRICKY = [
  'a',
  ',',
  ':',
  '"',
  "'",
  '\\',
  'N',
  'u',
  'n',
  '1',
  '[',
  ']',
  '{',
  '}',
  '(',
  '@',
  'D',
  'B',
  ' ',
  '\n',
  '\u0000',
  'é',
  'e\u0301',
  '\u2028',
  '😀',
  '\ud800',
  '\udfff',
];

const text = fc.string({ unit: fc.constantFrom(...TRICKY), maxLength: 4 });

const number = fc.oneof(
  fc.integer({ min: -2, max: 2 }),
  fc.constantFrom(-0, NaN, Infinity, -Infinity, 0.5, 1e21, 2 ** 53, Number.MIN_VALUE),
  fc.double(),
);

const leaf = fc.oneof(
  fc.constantFrom(null, undefined, true, false),
  number,
  fc.bigInt({ min: -2n, max: 2n }),
  text,
  fc.constantFrom(-1, 0, 1, NaN).map((time) => new Date(time)),
  fc.tuple(fc.uint8Array({ maxLength: 3 }), fc.boolean()).map(([bytes, asBuffer]) => (asBuffer ? Buffer.from(bytes) : bytes)),
  // Same bytes as some Uint8Arrays above, yet another kind of argument.
  fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 2 }).map((items) => new Uint16Array(items)),
);

/** Nested arguments over `leaf`: arrays, plain objects, Maps, Sets and class instances of them. */
function nested(leaf: fc.Arbitrary<unknown>, key: fc.Arbitrary<string>, { size = 3, maxDepth = 3 } = {}): fc.Arbitrary<unknown> {
  return fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth },
      leaf,
      fc.array(tie('value'), { maxLength: size }),
      fc.dictionary(key, fc.option(tie('value'), { nil: undefined }), { maxKeys: size }),
      fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: size }).map((entries) => new Map(entries)),
      fc.array(tie('value'), { maxLength: size }).map((items) => new Set(items)),
      fc.tuple(tie('value'), tie('value')).map(([x, y]) => new Point(x, y)),
    ),
  })).value;
}

/** Any argument hoard can key on: primitives, containers and nested mixes of them. */
export const argumentList = fc.array(nested(leaf, text), { maxLength: 4 });

/**
 * Arguments from a handful of values that look alike once printed (1, "1", 1n, [1], 1 0 and 10,
 * ...): random lists of them are often equal or one step apart, which the rich lists rarely are.
 */
const lookalike = fc.constantFrom<unknown>(
  0,
  1,
  10,
  '1',
  '',
  ',',
  'u',
  null,
  undefined,
  1n,
  true,
  new Date(1),
  new Uint8Array([1]),
  new Uint16Array([1]),
);

export const lookalikeArgumentList = fc.array(
  // Bare leaves half the time, so that argument boundaries (f(1, 0) vs f(10)) are tested too.
  fc.oneof(lookalike, nested(lookalike, fc.constantFrom('1', 'a'), { size: 2, maxDepth: 2 })),
  { maxLength: 3 },
);

type Kind = 'array' | 'object' | 'Date' | 'bytes' | 'Map' | 'Set' | Function;

function kindOf(value: object): Kind {
  if (Array.isArray(value)) return 'array';
  const proto = Object.getPrototypeOf(value);
  // A null-prototype dictionary is plain data, like an object literal.
  if (proto === Object.prototype || proto === null) return 'object';
  if (value instanceof Date) return 'Date';
  // Buffer is a Uint8Array: §10 makes the same bytes the same argument, whichever class holds them.
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof Map) return 'Map';
  if (value instanceof Set) return 'Set';
  return proto.constructor;
}

/** Own enumerable keys whose value is not undefined (an undefined property is an absent one). */
function definedKeys(value: object): string[] {
  return Object.keys(value)
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .sort();
}

/** Whether two collections hold the same items, counted with multiplicity, in any order. */
function sameMultiset<T>(left: readonly T[], right: readonly T[], same: (a: T, b: T) => boolean): boolean {
  if (left.length !== right.length) return false;
  const unmatched = [...right];
  // Greedy matching is exact because `same` is an equivalence relation.
  for (const item of left) {
    const at = unmatched.findIndex((candidate) => same(item, candidate));
    if (at < 0) return false;
    unmatched.splice(at, 1);
  }
  return true;
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return (
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0
  );
}

/**
 * Structural equality of two arguments as SPEC §10 defines it: objects by content whatever their
 * key order, with undefined properties absent; Maps and Sets by content whatever their insertion
 * order; a Buffer and a Uint8Array with the same bytes alike; 0 and -0 alike; NaN like NaN.
 */
export function sameArgument(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return Number.isNaN(a) && Number.isNaN(b);
  }
  const kind = kindOf(a);
  if (kind !== kindOf(b)) return false;
  switch (kind) {
    case 'array':
      return sameArguments(a as unknown[], b as unknown[]);
    case 'Date':
      return Object.is((a as Date).getTime(), (b as Date).getTime());
    case 'bytes':
      return sameBytes(a as Uint8Array, b as Uint8Array);
    case 'Map':
      return sameMultiset([...(a as Map<unknown, unknown>)], [...(b as Map<unknown, unknown>)], sameArguments);
    case 'Set':
      return sameMultiset([...(a as Set<unknown>)], [...(b as Set<unknown>)], sameArgument);
    default:
      if (ArrayBuffer.isView(a)) return sameBytes(a, b as ArrayBufferView);
      return sameProperties(a, b);
  }
}

function sameProperties(a: object, b: object): boolean {
  const keys = definedKeys(a);
  const otherKeys = definedKeys(b);
  return (
    keys.length === otherKeys.length &&
    keys.every(
      (key, i) => key === otherKeys[i] && sameArgument((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    )
  );
}

export function sameArguments(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((item, i) => sameArgument(item, b[i]));
}

/** mulberry32: a tiny seeded generator, so a failing case replays from fast-check's seed. */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * A deep copy of `value` that differs only where §10 says it must not matter: object keys and
 * Map/Set entries in another order, undefined properties added or dropped, Buffer ↔ Uint8Array
 * (sometimes a view into a larger buffer), 0 ↔ -0. Every object is a new one, so nothing
 * can be recognised by identity.
 */
export function reshuffle(value: unknown, seed: number): unknown {
  return copy(value, randomFrom(seed));
}

function copy(value: unknown, random: () => number): unknown {
  if (value === 0) return random() < 0.5 ? -0 : 0;
  if (typeof value !== 'object' || value === null) return value;
  const kind = kindOf(value);
  switch (kind) {
    case 'array':
      return (value as unknown[]).map((item) => copy(item, random));
    case 'object':
      return copyProperties(value, random);
    case 'Date':
      return new Date((value as Date).getTime());
    case 'bytes':
      return copyBytes(value as Uint8Array, random);
    case 'Map':
      return new Map(shuffled([...(value as Map<unknown, unknown>)], random).map(([k, v]) => [copy(k, random), copy(v, random)]));
    case 'Set':
      return new Set(shuffled([...(value as Set<unknown>)], random).map((item) => copy(item, random)));
    default:
      if (value instanceof Point) return new Point(copy(value.x, random), copy(value.y, random));
      return new (kind as new (source: unknown) => unknown)(value);
  }
}

function copyProperties(value: object, random: () => number): object {
  const entries = Object.entries(value)
    .filter(([, item]) => item !== undefined || random() < 0.5)
    .map(([key, item]): [string, unknown] => [key, copy(item, random)]);
  if (random() < 0.3 && !Object.hasOwn(value, 'extra')) entries.push(['extra', undefined]);
  const target = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
  // defineProperty, so that an own '__proto__' key stays a plain property.
  for (const [key, item] of shuffled(entries, random)) {
    Object.defineProperty(target, key, { value: item, enumerable: true, writable: true, configurable: true });
  }
  return target;
}

function copyBytes(bytes: Uint8Array, random: () => number): Uint8Array {
  const roll = random();
  if (roll < 1 / 3) return new Uint8Array(bytes);
  if (roll < 2 / 3) return Buffer.from(bytes);
  // A view at an offset inside a larger buffer: only the viewed bytes may count.
  const larger = Buffer.alloc(bytes.length + 4, 0xee);
  larger.set(bytes, 2);
  return larger.subarray(2, 2 + bytes.length);
}
