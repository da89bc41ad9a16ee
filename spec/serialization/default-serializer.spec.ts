import { expect } from 'chai';
import fc from 'fast-check';
import { inspect } from 'node:util';
import { CacheSerializationError } from '#src/errors.js';
import { defaultSerializer } from '#src/serialization/default-serializer.js';

const { serialize, deserialize } = defaultSerializer;

function toBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** What a remote backend does: serialize, store bytes, read the bytes back, deserialize. */
function roundTrip(value: unknown): unknown {
  return deserialize(toBuffer(serialize(value)));
}

/**
 * Where `actual` and `expected` first differ, or undefined when they are the same value.
 * Stricter than chai's deep equality: Buffer vs Uint8Array, holes vs undefined, -0 vs 0,
 * invalid dates, prototypes, Map/Set insertion order and own `__proto__` keys all count.
 */
function difference(actual: unknown, expected: unknown, path = 'value'): string | undefined {
  if (typeof expected !== 'object' || expected === null) {
    return Object.is(actual, expected) ? undefined : `${path}: ${inspect(actual)} instead of ${inspect(expected)}`;
  }
  if (typeof actual !== 'object' || actual === null) return `${path}: ${inspect(actual)} instead of an object`;
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) {
    return `${path}: ${inspect(actual)} has another prototype than ${inspect(expected)}`;
  }
  if (expected instanceof Date) {
    return Object.is((actual as Date).getTime(), expected.getTime()) ? undefined : `${path}: another time`;
  }
  if (expected instanceof Uint8Array) {
    return Buffer.compare(actual as Uint8Array, expected) === 0 ? undefined : `${path}: other bytes`;
  }
  if (expected instanceof Map || expected instanceof Set) {
    const actualEntries = [...(actual as Map<unknown, unknown> | Set<unknown>).entries()];
    return difference(actualEntries, [...expected.entries()], `[...${path}.entries()]`);
  }
  const actualKeys = Reflect.ownKeys(actual);
  const expectedKeys = Reflect.ownKeys(expected);
  if (inspect(actualKeys) !== inspect(expectedKeys)) {
    return `${path}: keys ${inspect(actualKeys)} instead of ${inspect(expectedKeys)}`;
  }
  for (const key of expectedKeys) {
    if (key === 'length' && Array.isArray(expected)) continue;
    const inner = difference(
      (actual as Record<PropertyKey, unknown>)[key],
      (expected as Record<PropertyKey, unknown>)[key],
      `${path}[${inspect(key)}]`,
    );
    if (inner !== undefined) return inner;
  }
  return Array.isArray(expected) && (actual as unknown[]).length !== expected.length ? `${path}: another length` : undefined;
}

function expectRoundTrip(value: unknown): void {
  const found = difference(roundTrip(value), value);
  expect(found, found).to.equal(undefined);
}

function expectSerializationError(value: unknown, ...fragments: string[]): CacheSerializationError {
  let thrown: unknown;
  try {
    serialize(value);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).to.be.instanceOf(CacheSerializationError);
  const error = thrown as CacheSerializationError;
  for (const fragment of fragments) expect(error.message).to.contain(fragment);
  return error;
}

function expectDeserializationError(payload: string, fragment: string): void {
  expect(() => deserialize(Buffer.from(payload))).to.throw(CacheSerializationError, fragment);
}

/** An object with `key` as an own data property, whatever the key (`__proto__` included). */
function withOwn(key: string, value: unknown, into: Record<string, unknown> = {}): Record<string, unknown> {
  Object.defineProperty(into, key, { value, writable: true, enumerable: true, configurable: true });
  return into;
}

describe('defaultSerializer', () => {
  describe('round trips', () => {
    const cases: Array<[string, unknown]> = [
      ['a string', 'héllo \u{1F600} \ud800 "quoted" \\'],
      ['a string that starts like a tagged payload', '~{"~":"undefined"}'],
      ['an empty string', ''],
      ['an integer', 42],
      ['a fraction', -1.5e-300],
      ['true', true],
      ['false', false],
      ['null', null],
      ['undefined', undefined],
      ['-0', -0],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
      ['a BigInt', 12345678901234567890123456789n],
      ['a negative BigInt', -5n],
      ['a Date', new Date('2024-02-29T12:34:56.789Z')],
      ['an invalid Date', new Date(NaN)],
      ['a Buffer', Buffer.from([0, 1, 2, 250, 255])],
      ['an empty Buffer', Buffer.alloc(0)],
      ['a Buffer that is a view into a larger one', Buffer.from('..abc..').subarray(2, 5)],
      ['a Uint8Array', new Uint8Array([9, 8, 7])],
      ['a Uint8Array view', new Uint8Array(new Uint8Array([1, 2, 3, 4, 5]).buffer, 1, 3)],
      [
        'a Map with keys of every kind',
        new Map<unknown, unknown>([
          ['a', 1],
          [1, 'one'],
          [-0, 'minus zero'],
          [NaN, 'nan'],
          [true, null],
          [null, undefined],
          [undefined, 'u'],
          [10n, 'big'],
          [{ k: 1 }, 'object key'],
          [[1, 2], 'array key'],
          [new Date(0), 'date key'],
          [new Map([[1, 2]]), 'map key'],
        ]),
      ],
      ['a Set', new Set<unknown>([1, 'a', undefined, null, -0, NaN, { x: [1] }, new Set([2])])],
      ['an empty Map and Set', [new Map(), new Set()]],
      ['an array with undefined elements', [undefined, 1, undefined]],
      ['an array with holes', [, 1, , , 'x', ,]],
      ['an object with undefined properties', { a: undefined, b: 1, c: { d: undefined } }],
      ['an empty object and array', { o: {}, a: [] }],
      ['special numbers nested', { n: [NaN, -0, Infinity, -Infinity, 0, 1] }],
      [
        'everything nested',
        {
          user: { id: 7n, joined: new Date(86_400_000), avatar: Buffer.from('png'), nickname: undefined },
          index: new Map<unknown, unknown>([[new Set([1]), [new Map([['deep', [new Date(1), undefined, -0]]])]]]),
          blobs: [new Uint8Array([1]), Buffer.from([2])],
        },
      ],
    ];
    for (const [name, value] of cases) {
      it(`round-trips ${name}`, () => expectRoundTrip(value));
    }

    it('gives a Buffer back for a Buffer and a Uint8Array (not a Buffer) for a Uint8Array', () => {
      const [buffer, bytes] = roundTrip([Buffer.from([1]), new Uint8Array([2])]) as [unknown, unknown];
      expect(Buffer.isBuffer(buffer)).to.equal(true);
      expect(bytes).to.be.instanceOf(Uint8Array);
      expect(Buffer.isBuffer(bytes)).to.equal(false);
    });

    it('keeps a hole distinct from an undefined element', () => {
      const array = roundTrip([, undefined]) as unknown[];
      expect(array).to.have.length(2);
      expect(0 in array).to.equal(false);
      expect(1 in array).to.equal(true);
    });

    it('keeps a property whose value is undefined as an own property', () => {
      expect(Object.keys(roundTrip({ a: undefined }) as object)).to.deep.equal(['a']);
    });

    it('stores plain JSON data as its JSON text, readable by other programs', () => {
      const value = { id: 1, name: 'Ada', tags: ['x', 'y'], nested: { ok: true, none: null }, ratio: 0.25 };
      expect(toBuffer(serialize(value)).toString('utf8')).to.equal(JSON.stringify(value));
      expect(deserialize(Buffer.from(JSON.stringify(value)))).to.deep.equal(value);
    });

    it('stores data JSON would change in another form than JSON text', () => {
      for (const value of [{ a: undefined }, [NaN], -0, { d: new Date(0) }, [, 1]]) {
        expect(toBuffer(serialize(value)).toString('utf8')).not.to.equal(JSON.stringify(value));
      }
    });

    it('stores an object reached twice as two copies, like JSON', () => {
      const shared = { n: 1 };
      const result = roundTrip({ a: shared, b: shared }) as { a: object; b: object };
      expect(result.a).to.deep.equal(shared);
      expect(result.b).to.deep.equal(shared);
      expect(result.a).not.to.equal(result.b);
    });

    it('round-trips data nested more deeply than the plain-JSON fast path looks', () => {
      let deep: unknown = 'bottom';
      for (let i = 0; i < 500; i++) deep = i % 2 === 0 ? [deep] : { k: deep };
      expectRoundTrip(deep);
      expectRoundTrip({ hidden: deep, date: new Date(5) });
    });
  });

  describe('class instances, toJSON and boxed primitives (as JSON.stringify does)', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      get length(): number {
        return Math.hypot(this.x, this.y);
      }
      scale(by: number): Point {
        return new Point(this.x * by, this.y * by);
      }
    }

    it('stores a class instance as its own enumerable properties and gives back a plain object', () => {
      const result = roundTrip({ at: new Point(3, 4) }) as { at: unknown };
      expect(Object.getPrototypeOf(result.at)).to.equal(Object.prototype);
      expect(result.at).to.deep.equal({ x: 3, y: 4 });
    });

    it('calls toJSON with the property name and stores what it returns, special values included', () => {
      const seen: string[] = [];
      const money = {
        toJSON(key: string) {
          seen.push(key);
          return { cents: 1050n, at: new Date(0) };
        },
      };
      expect(roundTrip({ price: money, list: [money] })).to.deep.equal({
        price: { cents: 1050n, at: new Date(0) },
        list: [{ cents: 1050n, at: new Date(0) }],
      });
      expect(seen).to.deep.equal(['price', '0']);
    });

    it('honours toJSON on an array', () => {
      const array = Object.assign([1, 2], { toJSON: () => new Map([[1, 2]]) });
      expect(roundTrip({ array })).to.deep.equal({ array: new Map([[1, 2]]) });
      expect(roundTrip(array)).to.deep.equal(new Map([[1, 2]]));
    });

    it('keeps a non-function toJSON property as data', () => {
      expectRoundTrip({ toJSON: 'just a string', n: 1 });
    });

    it('stores boxed primitives as their primitive value', () => {
      expectRoundTrip([1, 'a', true, 5n]);
      expect(roundTrip([new Number(1), new String('a'), new Boolean(true), Object(5n)])).to.deep.equal([1, 'a', true, 5n]);
    });

    it('gives a null-prototype object back as an ordinary object with the same properties', () => {
      const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, d: new Date(2) });
      const result = roundTrip(bare) as object;
      expect(Object.getPrototypeOf(result)).to.equal(Object.prototype);
      expect(result).to.deep.equal({ a: 1, d: new Date(2) });
    });
  });

  describe('user data that looks like type tags', () => {
    const lookAlikes: Array<[string, unknown]> = [
      ['a Date tag', { '~': 'Date', v: 1 }],
      ['an undefined tag', { '~': 'undefined' }],
      ['a hole tag', { '~': 'hole' }],
      ['an escaped-object tag', { '~': 'object', v: { '~': 'Date', v: 0 } }],
      ['a Map tag', { '~': 'Map', v: [['a', 1]] }],
      ['a number tag', { '~': 'number', v: 'NaN' }],
      ['a BigInt tag', { '~': 'BigInt', v: '1' }],
      ['a Buffer tag', { '~': 'Buffer', v: 'AAE=' }],
      ['an unknown tag', { '~': 'Function', v: 'return 1' }],
      ['a tag key with other values', { '~': { '~': [{ '~': null }] } }],
      ["Node's Buffer JSON form", { type: 'Buffer', data: [1, 2] }],
    ];
    for (const [name, value] of lookAlikes) {
      it(`round-trips an object shaped like ${name}`, () => expectRoundTrip(value));
      it(`round-trips an object shaped like ${name} next to special values`, () => {
        expectRoundTrip([value, undefined, new Map([[value, value]]), new Set([value]), { inner: value, d: new Date(1) }]);
      });
    }

    it('round-trips an array of objects shaped like holes in a sparse array', () => {
      expectRoundTrip([{ '~': 'hole' }, , { '~': 'hole' }]);
    });
  });

  describe('prototype pollution', () => {
    let prototypeNames: string[];
    beforeEach(() => {
      prototypeNames = Object.getOwnPropertyNames(Object.prototype);
    });
    afterEach(() => {
      expect(Object.getOwnPropertyNames(Object.prototype)).to.deep.equal(prototypeNames);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(([] as unknown as Record<string, unknown>).polluted).to.equal(undefined);
      expect((new Map() as unknown as Record<string, unknown>).polluted).to.equal(undefined);
    });

    function expectOwnProtoKey(object: unknown): void {
      expect(Object.getPrototypeOf(object)).to.equal(Object.prototype);
      expect(Object.hasOwn(object as object, '__proto__')).to.equal(true);
      expect((object as Record<string, unknown>).polluted).to.equal(undefined);
    }

    const hostilePlain = ['{"__proto__":{"polluted":true}}', '{"a":[{"__proto__":{"polluted":true}}]}'];
    for (const payload of hostilePlain) {
      it(`keeps __proto__ as an own property in the plain payload ${payload}`, () => {
        const result = deserialize(Buffer.from(payload)) as Record<string, unknown>;
        expectOwnProtoKey(payload.startsWith('{"a"') ? (result.a as unknown[])[0] : result);
      });
    }

    it('keeps __proto__ as an own property in a tagged object', () => {
      const result = deserialize(Buffer.from('~{"__proto__":{"polluted":true},"u":{"~":"undefined"}}'));
      expectOwnProtoKey(result);
      expect(Object.keys(result as object)).to.deep.equal(['__proto__', 'u']);
    });

    it('keeps __proto__ as an own property in a tagged array element and an escaped object', () => {
      const [element, escaped] = deserialize(
        Buffer.from('~[{"__proto__":{"polluted":true}},{"~":"object","v":{"~":1,"__proto__":{"polluted":true}}}]'),
      ) as unknown[];
      expectOwnProtoKey(element);
      expectOwnProtoKey(escaped);
    });

    it('keeps a __proto__ key of a Map as a Map key', () => {
      const map = deserialize(Buffer.from('~{"~":"Map","v":[["__proto__",{"polluted":true}]]}')) as Map<unknown, unknown>;
      expect([...map.keys()]).to.deep.equal(['__proto__']);
    });

    it('keeps constructor and prototype keys as plain data', () => {
      for (const payload of [
        '{"constructor":{"prototype":{"polluted":true}}}',
        '~{"constructor":{"prototype":{"polluted":true}},"u":{"~":"undefined"}}',
      ]) {
        const result = deserialize(Buffer.from(payload)) as Record<string, unknown>;
        expect(Object.getPrototypeOf(result)).to.equal(Object.prototype);
        expect(result.constructor).to.deep.equal({ prototype: { polluted: true } });
        expect(Object.prototype.constructor).to.equal(Object);
      }
    });

    it('treats tag names that exist on prototypes as unknown tags', () => {
      for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
        expectDeserializationError(`~{"~":"${name}","v":{"polluted":true}}`, `unknown tag "${name}"`);
      }
    });

    it('never evaluates code found in a payload', () => {
      const global = globalThis as Record<string, unknown>;
      for (const payload of [
        '~{"~":"Function","v":"globalThis.pwned = true"}',
        '~{"~":"eval","v":"globalThis.pwned = true"}',
        '"globalThis.pwned = true"',
      ]) {
        try {
          deserialize(Buffer.from(payload));
        } catch (error) {
          expect(error).to.be.instanceOf(CacheSerializationError);
        }
      }
      expect(global.pwned).to.equal(undefined);
    });

    it('round-trips user objects that own __proto__, constructor and prototype keys without touching prototypes', () => {
      const hostile = withOwn('__proto__', { polluted: true }, { constructor: { prototype: { polluted: true } } });
      expectRoundTrip(hostile);
      expectRoundTrip({ list: [hostile], when: new Date(0), map: new Map([['k', hostile]]) });
    });
  });

  describe('values that cannot be serialized', () => {
    it('names a function and where it was', () => {
      expectSerializationError({ items: [1, 2, 3, () => 1] }, 'value.items[3]', 'function');
    });

    it('names a function at the top level', () => {
      expectSerializationError(function compute() {}, 'Cannot serialize value: it is a function');
    });

    it('names a symbol', () => {
      expectSerializationError({ kind: Symbol('k') }, 'value.kind', 'symbol');
    });

    it('names a circular reference and what it points back to', () => {
      const node: Record<string, unknown> = { name: 'root', children: [] };
      (node.children as unknown[]).push({ parent: node });
      expectSerializationError({ tree: node }, 'value.tree.children[0].parent', 'circular reference to value.tree');
    });

    it('names a circular reference through a Map and a Set', () => {
      const map = new Map<unknown, unknown>();
      map.set('self', map);
      expectSerializationError(map, 'value.get("self")', 'circular reference to value');
      const set = new Set<unknown>();
      set.add(set);
      expectSerializationError(set, 'value.values()[0]');
    });

    it('names the position inside Maps and Sets', () => {
      expectSerializationError(new Map([['handler', () => 1]]), 'value.get("handler")');
      expectSerializationError(new Map([[7, () => 1]]), 'value.get(7)');
      expectSerializationError(new Map([[{}, () => 1]]), 'value.get(<key #0>)');
      expectSerializationError(new Map([[Symbol('s'), 1]]), 'value.keys()[0]');
      expectSerializationError({ s: new Set([1, Symbol('x')]) }, 'value.s.values()[1]');
    });

    it('quotes property names that are not identifiers', () => {
      expectSerializationError({ 'a key': { 'x-y': () => 1 } }, 'value["a key"]["x-y"]');
    });

    for (const [name, value] of [
      ['WeakMap', new WeakMap()],
      ['WeakSet', new WeakSet()],
      ['WeakRef', new WeakRef({})],
      ['Promise', Promise.resolve(1)],
      ['RegExp', /x/],
      ['Error', new Error('boom')],
      ['ArrayBuffer', new ArrayBuffer(2)],
      ['Float64Array', new Float64Array(2)],
      ['DataView', new DataView(new ArrayBuffer(2))],
      ['Map Iterator', new Map().keys()],
    ] as Array<[string, unknown]>) {
      it(`refuses ${name} values rather than storing them as {}`, () => {
        expectSerializationError({ field: [value] }, 'value.field[0]', name);
      });
    }

    it('reports a throwing getter or toJSON with its path and the original error as cause', () => {
      const error = new Error('getter failed');
      const withGetter = {
        get broken(): never {
          throw error;
        },
      };
      expect(expectSerializationError({ a: withGetter }, 'value.a.broken', 'getter failed').cause).to.equal(error);
      const withToJson = {
        toJSON: () => {
          throw error;
        },
      };
      expect(expectSerializationError([1, withToJson], 'value[1]', 'getter failed').cause).to.equal(error);
    });

    it('reports class instances holding functions in own properties', () => {
      class Job {
        onDone = () => undefined;
      }
      expectSerializationError({ job: new Job() }, 'value.job.onDone', 'function');
    });
  });

  describe('malformed payloads', () => {
    const payloads: Array<[string, string]> = [
      ['', 'Unexpected end'],
      ['{not json', 'value'],
      ['~', 'Unexpected end'],
      ['~{"~":"Date","v":"yesterday"}', 'Date tag holds a number or null'],
      ['~{"~":"BigInt","v":"0x10"}', 'decimal digits'],
      ['~{"~":"BigInt","v":1}', 'decimal digits'],
      ['~{"~":"number","v":"1e3"}', 'number tag'],
      ['~{"~":"Buffer","v":"not base64!"}', 'base64'],
      ['~{"~":"Uint8Array","v":[1,2]}', 'base64'],
      ['~{"~":"Map","v":{}}', 'Map tag holds an array'],
      ['~{"~":"Map","v":[["only key"]]}', 'a Map entry is a [key, value] pair'],
      ['~{"~":"Set","v":"abc"}', 'Set tag holds an array'],
      ['~{"~":"object","v":[1]}', 'object tag holds an object'],
      ['~{"a":{"~":"hole"}}', 'value.a: a hole tag appears outside an array'],
      ['~{"list":[1,{"~":"nope"}]}', 'value.list[1]: unknown tag "nope"'],
      ['~{"~":"Map","v":[["k",{"~":"Set","v":1}]]}', 'value.get("k")'],
    ];
    for (const [payload, fragment] of payloads) {
      it(`rejects ${JSON.stringify(payload)} with a CacheSerializationError`, () => {
        expectDeserializationError(payload, fragment);
      });
    }
  });

  describe('properties', () => {
    const key = fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.constantFrom('~', 'v', '__proto__', 'constructor', 'prototype', 'toJSON', 'hasOwnProperty'),
    );
    const leaf = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.bigInt(),
      fc.date(),
      fc.uint8Array({ maxLength: 8 }),
      fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
      fc.uint8Array({ minLength: 2, maxLength: 8 }).map((bytes) => Buffer.from(bytes).subarray(1)),
    );
    const { value } = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { maxDepth: 4, depthIdentifier: 'value' },
        leaf,
        fc.array(tie('value'), { maxLength: 4 }),
        fc.sparseArray(tie('value'), { maxLength: 6 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
        fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
        fc.array(tie('value'), { maxLength: 3 }).map((elements) => new Set(elements)),
        fc.record(
          {
            '~': fc.constantFrom('undefined', 'hole', 'Date', 'object', 'Map', 'number', 'BigInt'),
            v: tie('value'),
          },
          { noNullPrototype: true },
        ),
      ),
    }));

    it('round-trips any value made of supported types', () => {
      fc.assert(fc.property(value, expectRoundTrip), { numRuns: 1000 });
    });

    it('round-trips fast-check anything() restricted to supported types', () => {
      const anything = fc.anything({
        key,
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withSparseArray: true,
        withNullPrototype: false,
        withBoxedValues: false,
        withTypedArray: false,
        withObjectString: true,
        withUnicodeString: true,
      });
      fc.assert(fc.property(anything, expectRoundTrip), { numRuns: 500 });
    });

    it('stores every JSON document without -0 as its own JSON text', () => {
      fc.assert(
        fc.property(
          fc.jsonValue().filter((json) => !hasNegativeZero(json)),
          (json) => {
            expect(toBuffer(serialize(json)).toString('utf8')).to.equal(JSON.stringify(json));
          },
        ),
      );
    });
  });
});

/** JSON writes -0 as 0, so the serializer tags it. */
function hasNegativeZero(value: unknown): boolean {
  if (Object.is(value, -0)) return true;
  return typeof value === 'object' && value !== null && Object.values(value).some(hasNegativeZero);
}
