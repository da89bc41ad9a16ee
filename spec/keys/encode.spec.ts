import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { CacheKeyError } from 'hoard';
import { encodeArguments, MAX_NESTING } from '#src/keys/encode.js';
import { Point, argumentList } from './arguments.js';

const encode = (...args: unknown[]): string => encodeArguments(args, 'Spec.method');

/** Each group lists argument lists that must all get different encodings. */
function expectAllDistinct(lists: unknown[][]): void {
  const seen = new Map<string, unknown[]>();
  for (const list of lists) {
    const encoding = encodeArguments(list, 'Spec.method');
    const earlier = seen.get(encoding);
    expect(earlier, `f(${inspect(list).slice(1, -1)}) and f(${inspect(earlier).slice(1, -1)}) share ${encoding}`).to.equal(
      undefined,
    );
    seen.set(encoding, list);
  }
}

class Other {
  constructor(
    readonly x: unknown,
    readonly y: unknown,
  ) {}
}

/** Encodes as what its toJSON returns, tagged with its class. */
class Money {
  constructor(private readonly cents: number) {}
  toJSON(): string {
    return `${this.cents / 100} EUR`;
  }
}

function sharedBytes(bytes: number[]): SharedArrayBuffer {
  const memory = new SharedArrayBuffer(bytes.length);
  new Uint8Array(memory).set(bytes);
  return memory;
}

const circular = (): unknown => {
  const node: Record<string, unknown> = { name: 'root' };
  node.self = node;
  return node;
};

describe('canonical argument encoding', () => {
  describe('distinct arguments get distinct keys (SPEC §4)', () => {
    const groups: Record<string, unknown[][]> = {
      'a comma inside a string vs two arguments': [['a,b'], ['a', 'b'], [['a', 'b']], ['a', ',b'], ['a,', 'b']],
      'a colon inside a string vs two arguments': [
        ['x:y'],
        ['x', 'y'],
        ['x:', 'y'],
        ['x', ':y'],
        [{ x: 'y' }],
        [new Map([['x', 'y']])],
      ],
      'numbers vs their strings and bigints': [[1], ['1'], [1n], ['1n'], [1, 'n'], [true], ['t'], [[1]], [-1], [-1n], ['-1']],
      'argument boundaries of bare numbers': [
        [1, 0],
        [10],
        [1, 0.5],
        [10.5],
        [-1, -2],
        [-1 - 2],
        [1, 2, 3],
        [123],
        [[1, 2], 3],
        [1, [2, 3]],
      ],
      'null vs undefined vs no argument': [
        [null],
        [undefined],
        [],
        [undefined, undefined],
        [null, null],
        ['null'],
        ['undefined'],
        ['N'],
        ['u'],
        [''],
        [[]],
        [{}],
        [NaN],
        [0],
        [false],
      ],
      'nesting of arrays': [[[1, [2]]], [[[1], 2]], [[1, 2]], [1, [2]], [[1], 2], [1, 2], [[[1, 2]]], [[[[1]], 2]], [[1, [[2]]]]],
      'bigints vs numbers': [
        [1n],
        [1],
        [0n],
        [0],
        [2n ** 64n],
        [2 ** 64],
        [[1n]],
        [new Map([[1n, 1n]])],
        [new Map([[1, 1]])],
        [new Set([1n])],
        [new Set([1])],
      ],
      'numbers that print alike elsewhere': [
        [0.1 + 0.2],
        [0.3],
        [2 ** 53],
        [2 ** 53 + 2],
        [1e21],
        ['1e+21'],
        [1e-7],
        [Number.MIN_VALUE],
        [Number.MAX_VALUE],
        [Infinity],
        [-Infinity],
        ['Infinity'],
        [NaN],
        ['NaN'],
      ],
      dates: [
        [new Date(0)],
        [new Date(1)],
        [new Date(-1)],
        [new Date(NaN)],
        [0],
        ['1970-01-01T00:00:00.000Z'],
        ['D0'],
        [new Date(0), new Date(0)],
        [[new Date(0)]],
        [{ at: new Date(0) }],
      ],
      maps: [
        [new Map([[1, 2]])],
        [new Map([[2, 1]])],
        [new Map([['1', 2]])],
        [new Map([[1, '2']])],
        [
          new Map([
            [1, 2],
            [3, 4],
          ]),
        ],
        [
          new Map([
            [1, 4],
            [3, 2],
          ]),
        ],
        [new Map([[[1], 2]])],
        [new Map([[1, new Map([[2, 3]])]])],
        [new Map([[new Map([[1, 2]]), 3]])],
        [new Map()],
        [new Set()],
        [{}],
        [[]],
        [{ 1: 2 }],
        [[[1, 2]]],
        [new Set([1, 2])],
        [new Set([[1, 2]])],
        [new Map([[undefined, 1]])],
        [new Map([[null, 1]])],
        [new Map([[1, undefined]])],
      ],
      sets: [
        [new Set([1])],
        [new Set(['1'])],
        [new Set([1, 2])],
        [new Set([1, 2, 3])],
        [new Set([[1, 2]])],
        [new Set([new Set([1]), 2])],
        [new Set([1, new Set([2])])],
        [new Set([new Set([1, 2])])],
        [[1]],
        [new Set([undefined])],
        [new Set([null])],
        [new Set([{}])],
        [new Set([[]])],
        [new Set([new Set()])],
        [new Set([{}, {}])],
      ],
      'bytes vs other arguments': [
        [Buffer.from([1, 2])],
        [Buffer.from([2, 1])],
        [Buffer.from([1])],
        [Buffer.alloc(0)],
        [[1, 2]],
        ['\u0001\u0002'],
        ['AQI='],
        [Buffer.from('AQI=')],
        [new Uint16Array([1, 2])],
        [new Uint16Array([0x0201])],
        [new Uint8ClampedArray([1, 2])],
        [new Int8Array([1, 2])],
        [new DataView(new Uint8Array([1, 2]).buffer)],
        [new Uint8Array([1, 2]).buffer],
        [Buffer.from([1]), Buffer.from([2])],
        [new Set([Buffer.from([1, 2])])],
        [{ 0: 1, 1: 2 }],
      ],
      'nested mixes': [
        [{ a: [new Map([[new Set([1]), new Date(0)]])] }],
        [{ a: [new Map([[new Set([1]), new Date(1)]])] }],
        [{ a: [new Map([[new Set(['1']), new Date(0)]])] }],
        [{ a: [new Map([[new Set([1, 2]), new Date(0)]])] }],
        [{ a: [new Map([[[1], new Date(0)]])] }],
        [{ a: new Map([[new Set([1]), new Date(0)]]) }],
        [{ b: [new Map([[new Set([1]), new Date(0)]])] }],
        [{ a: [new Map([[new Set([Buffer.from([1])]), [new Date(0)]]])] }],
        [{ a: [new Map([[new Set([new Uint8Array([1])]), [{ d: new Date(0) }]]])] }],
        [[new Map([[new Set([1]), new Date(0)]])], { a: undefined }],
      ],
      'object keys and values': [
        [{ a: 1 }],
        [{ a: '1' }],
        [{ a: 1, b: 2 }],
        [{ 'a,b': 1 }],
        [{ a: { b: 1 } }],
        [{ 'a.b': 1 }],
        [{ '"a"': 1 }],
        [{ 'a:1': 1 }],
        [{ a: [1] }],
        [['a', 1]],
        [{ a: null }],
        [{}],
        [{ '': 1 }],
        [{ a: 1 }, { b: 2 }],
        [{ a: 1, b: { c: 2 } }],
        [{ a: 1, b: {}, c: 2 }],
      ],
      'class instances vs plain objects': [
        [new Point(1, 2)],
        [new Point(2, 1)],
        [{ x: 1, y: 2 }],
        [new Other(1, 2)],
        [new Point(new Point(1, 2), 3)],
        [new Money(100)],
        [new Money(200)],
        ['1 EUR'],
        [/a/g],
        [/a/],
        ['/a/g'],
      ],
      'strings that look like other tokens': [
        'N',
        'u',
        't',
        'f',
        '1n',
        'D0',
        'DNaN',
        '[1]',
        '{}',
        '{"a":1}',
        'M[]',
        'S[]',
        'B',
        'BAQI=',
        'A()',
        'R"/a/"',
        '@Point{}',
        'NaN',
        'Infinity',
        '0',
        '-0',
        'null',
        'true',
        ',',
        ':',
        '',
        '"',
        '""',
        '\\',
        '\\"',
        '"\\',
        "'",
        ' ',
        '\n',
        '\\n',
        '\u0000',
        '\\u0000',
        'é',
        'e\u0301',
        '\ud800',
        '\udc00',
        '\ud800\udc00',
        '😀',
        '\ufffd',
        '\ufffd\ufffd',
        '\u2028',
      ].map((text) => [text]),
      'strings vs the values they spell': [
        [null],
        [undefined],
        [true],
        [false],
        [1n],
        [new Date(0)],
        [[1]],
        [{}],
        [{ a: 1 }],
        [new Map()],
        [new Set()],
        [Buffer.alloc(0)],
        [Buffer.from([1, 2])],
        [NaN],
        [Infinity],
        [0],
        [new Point(undefined, undefined)],
        [/a/],
        [new Uint8Array([1, 2]).buffer],
        ['N'],
        ['u'],
        ['t'],
        ['f'],
        ['1n'],
        ['D0'],
        ['[1]'],
        ['{}'],
        ['{"a":1}'],
        ['M[]'],
        ['S[]'],
        ['B'],
        ['BAQI='],
        ['NaN'],
        ['Infinity'],
        ['0'],
        ['@Point{}'],
        ['R"/a/"'],
        ['A(AQI=)'],
      ],
      'boxed primitives': [
        [new Number(1)],
        [new Number(2)],
        [1],
        [new Boolean(true)],
        [new Boolean(false)],
        [true],
        [new String('a')],
        [new String('b')],
        ['a'],
        [Object(1n)],
        [Object(2n)],
        [1n],
      ],
      'shared memory': [[sharedBytes([1])], [sharedBytes([2])], [sharedBytes([1, 2])], [new Uint8Array(sharedBytes([1, 2]))]],
      'lone surrogates vs the replacement character': [
        ['\ud800'],
        ['\udbff'],
        ['\udc00'],
        ['\ufffd'],
        ['\ud800\udc00'],
        ['\udc00\ud800'],
        ['?'],
      ],
    };

    for (const [name, lists] of Object.entries(groups)) {
      it(name, () => expectAllDistinct(lists));
    }
  });

  describe('the same arguments get the same key (SPEC §10)', () => {
    const sharedItem = { id: 1 };
    const offsetView = Buffer.from([9, 1, 2, 9]).subarray(1, 3);
    const pairs: [string, unknown[], unknown[]][] = [
      ['object key order', [{ a: 1, b: 2 }], [{ b: 2, a: 1 }]],
      ['key order deep inside', [[{ x: { p: 1, q: [{ m: 1, n: 2 }] }, y: 2 }]], [[{ y: 2, x: { q: [{ n: 2, m: 1 }], p: 1 } }]]],
      [
        'Map insertion order',
        [
          new Map<unknown, unknown>([
            ['a', 1],
            [2, 'b'],
            [null, [3]],
          ]),
        ],
        [
          new Map<unknown, unknown>([
            [null, [3]],
            [2, 'b'],
            ['a', 1],
          ]),
        ],
      ],
      ['Set insertion order', [new Set<unknown>([3, 'a', [1], null])], [new Set<unknown>([null, [1], 'a', 3])]],
      [
        'Map and Set order nested',
        [{ m: new Map([[new Set([1, 2]), new Set(['x', 'y'])]]) }],
        [{ m: new Map([[new Set([2, 1]), new Set(['y', 'x'])]]) }],
      ],
      ['Buffer vs Uint8Array with the same bytes', [Buffer.from([1, 2, 255])], [new Uint8Array([1, 2, 255])]],
      ['a view at an offset vs the same bytes', [offsetView], [new Uint8Array([1, 2])]],
      [
        'Buffers in containers',
        [[Buffer.from('hi')], new Set([Buffer.from([0])])],
        [[new Uint8Array([104, 105])], new Set([new Uint8Array([0])])],
      ],
      ['0 vs -0', [0], [-0]],
      ['0 vs -0 inside', [[0], { n: -0 }, new Map([[1, -0]])], [[-0], { n: 0 }, new Map([[1, 0]])]],
      ['an undefined property vs an absent one', [{ a: undefined }], [{}]],
      ['undefined properties inside', [{ a: 1, b: undefined, c: [{ d: undefined }] }], [{ a: 1, c: [{}] }]],
      ['a shared reference vs two equal objects', [[sharedItem, sharedItem]], [[{ id: 1 }, { id: 1 }]]],
      ['a null-prototype dictionary vs an object literal', [Object.assign(Object.create(null), { a: 1 })], [{ a: 1 }]],
      ['a hole vs undefined', [[, 1]], [[undefined, 1]]],
      ['equal dates', [new Date(86_400_000)], [new Date('1970-01-02T00:00:00Z')]],
    ];

    for (const [name, left, right] of pairs) {
      it(name, () => expect(encodeArguments(left, 'Spec.method')).to.equal(encodeArguments(right, 'Spec.method')));
    }
  });

  describe('format (docs/keys.md shows these)', () => {
    it('encodes each kind with its own token', () => {
      expect(encode('a,b', 1, null, undefined)).to.equal('"a,b",1,N,u');
      expect(encode(true, false, 1n, -0, NaN)).to.equal('t,f,1n,0,NaN');
      expect(encode({ region: 'eu', year: 2024, note: undefined })).to.equal('{"region":"eu","year":2024}');
      expect(encode([1, [2]], [[1], 2])).to.equal('[1,[2]],[[1],2]');
      expect(encode(new Date(0), Buffer.from('hi'))).to.equal('D0,BaGk=');
      expect(
        encode(
          new Map([
            ['b', 2],
            ['a', 1],
          ]),
          new Set([3, 1]),
        ),
      ).to.equal('M["a":1,"b":2],S[1,3]');
      expect(encode(new Point(1, 2), new Money(150))).to.equal('@Point{"x":1,"y":2},@Money("1.5 EUR")');
      expect(encode()).to.equal('');
    });
  });

  describe('arguments without a stable encoding (SPEC §4)', () => {
    const cases: [string, unknown][] = [
      ['a function', () => 1],
      ['a class', Point],
      ['a symbol', Symbol('s')],
      ['a registered symbol', Symbol.for('s')],
      ['a circular structure', circular()],
      [
        'a deep circular structure',
        (() => {
          const root: Record<string, unknown> = { a: { b: [{ c: new Map() }] } };
          ((root.a as Record<string, unknown[]>).b[0] as Record<string, Map<string, unknown>>).c.set('back', root);
          return root;
        })(),
      ],
      [
        'a self-containing array',
        (() => {
          const list: unknown[] = [1];
          list.push([list]);
          return list;
        })(),
      ],
      [
        'a Map that is its own key',
        (() => {
          const map = new Map<unknown, unknown>();
          map.set(map, 1);
          return map;
        })(),
      ],
      [
        'a Set that contains itself',
        (() => {
          const set = new Set<unknown>();
          set.add(set);
          return set;
        })(),
      ],
      ['a WeakMap', new WeakMap()],
      ['a WeakSet', new WeakSet()],
      ['a WeakRef', new WeakRef({})],
      ['a Promise', Promise.resolve(1)],
      ['a function nested in an object', { handler: () => 1 }],
      ['a symbol as a Map key', new Map([[Symbol('k'), 1]])],
      ['a symbol in a Set', new Set([Symbol('k')])],
      ['a symbol wrapper object', Object(Symbol('s'))],
      ['an object with a symbol-keyed property', { id: 1, [Symbol('k')]: 2 }],
    ];

    for (const [name, value] of cases) {
      it(`rejects ${name} with a CacheKeyError naming the method and position`, () => {
        let error: unknown;
        try {
          encodeArguments(['fine', { ok: true }, value], 'Reports.calculate');
        } catch (caught) {
          error = caught;
        }
        expect(error).to.be.instanceOf(CacheKeyError);
        const keyError = error as CacheKeyError;
        expect(keyError.method).to.equal('Reports.calculate');
        expect(keyError.argumentIndex).to.equal(2);
        expect(keyError.message).to.contain('Reports.calculate').and.to.contain('argument 2');
      });
    }

    it('counts positions from 0', () => {
      expect(() => encodeArguments([() => 1], 'f'))
        .to.throw(CacheKeyError)
        .with.property('argumentIndex', 0);
    });

    it(`keys arguments nested ${MAX_NESTING} levels deep and refuses deeper ones by name, never with a RangeError`, () => {
      const nested = (levels: number, leaf: unknown = 1): unknown => {
        let value = leaf;
        for (let level = 0; level < levels; level++) value = level % 2 === 0 ? [value] : { v: value };
        return value;
      };
      expect(encode(nested(MAX_NESTING))).to.be.a('string');
      for (const levels of [MAX_NESTING + 1, 2_000, 100_000]) {
        const error = (() => {
          try {
            encodeArguments(['x', nested(levels)], 'Reports.deep');
          } catch (caught) {
            return caught;
          }
        })();
        expect(error, `${levels} levels`).to.be.instanceOf(CacheKeyError);
        expect(error).to.include({ method: 'Reports.deep', argumentIndex: 1 });
        expect((error as Error).message).to.contain(`nested more than ${MAX_NESTING} levels deep`);
      }
      expect(encode(nested(3))).to.equal('[{"v":[1]}]');
    });

    it('keys shared, acyclic references that only look repeated', () => {
      const leaf = { id: 1 };
      const diamond = { left: { leaf }, right: { leaf }, list: [leaf, leaf] };
      expect(encode(diamond)).to.equal('{"left":{"leaf":{"id":1}},"list":[{"id":1},{"id":1}],"right":{"leaf":{"id":1}}}');
    });

    it('encodes the same way again after a rejected argument', () => {
      const value = { a: [new Map([[1, { b: 2 }]])] };
      const before = encode(value);
      expect(() => encode(value, circular())).to.throw(CacheKeyError);
      // A cycle found deep inside must not leave state behind that changes later keys.
      expect(() => encode({ deep: [[circular()]] })).to.throw(CacheKeyError);
      expect(encode(value)).to.equal(before);
      expect(encode(value, value)).to.equal(`${before},${before}`);
    });
  });

  describe('determinism', () => {
    it('gives the same encoding on every call, whatever was encoded in between', () => {
      const lists = fc.sample(argumentList, { seed: 42, numRuns: 200 });
      const first = lists.map((list) => encodeArguments(list, 'f'));
      const again = [...lists]
        .reverse()
        .map((list) => encodeArguments(list, 'f'))
        .reverse();
      expect(again).to.deep.equal(first);
    });

    it('encodes property names the same way after more distinct names than it keeps', () => {
      const value = { 'a"b': 1, region: 'eu' };
      const before = encodeArguments([value], 'f');
      for (let i = 0; i < 3000; i++) expect(encodeArguments([{ [`name${i}`]: i }], 'f')).to.equal(`{"name${i}":${i}}`);
      expect(encodeArguments([value], 'f')).to.equal(before);
      expect(before).to.equal('{"a\\"b":1,"region":"eu"}');
    });

    it('gives the same encodings and keys in another process', () => {
      const root = fileURLToPath(new URL('../../../', import.meta.url));
      const argumentsModule = new URL('./arguments.js', import.meta.url).href;
      // The child rebuilds the same values from fast-check's seed, with another V8 hash seed,
      // and reports both the encoder's output and the keys a cached function stores.
      const child = `
        import fc from 'fast-check';
        import { cached, CacheModule, MemoryBackend } from 'hoard';
        import { encodeArguments, MAX_NESTING } from '#src/keys/encode.js';
        import { argumentList } from ${JSON.stringify(argumentsModule)};
        const lists = fc.sample(argumentList, { seed: 7, numRuns: 300 });
        const keys = [];
        CacheModule.register(new MemoryBackend());
        CacheModule.on('set', (event) => keys.push(event.key));
        const f = cached(() => 0, { name: 'f' });
        for (const list of lists) f(...list);
        process.stdout.write(JSON.stringify({ encodings: lists.map((list) => encodeArguments(list, 'f')), keys }));
      `;
      const output = execFileSync(process.execPath, ['--hash-seed=271828', '--input-type=module', '-e', child], {
        cwd: root,
        encoding: 'utf8',
      });
      const { encodings, keys } = JSON.parse(output) as { encodings: string[]; keys: string[] };
      const expected = fc.sample(argumentList, { seed: 7, numRuns: 300 }).map((list) => encodeArguments(list, 'f'));
      expect(encodings).to.deep.equal(expected);
      // The child stored a key only for lists it had not seen (repeats are hits).
      expect(keys).to.deep.equal([...new Set(expected)].map((encoding) => `f:${encoding}`));
    });
  });
});
