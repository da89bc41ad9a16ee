import { expect } from 'chai';
import { inspect } from 'node:util';
import sinon from 'sinon';
import { Cached, cached, CacheKeyError, CacheModule, MemoryBackend } from 'hoard';
import { AsyncMemoryBackend } from '../support/async-backend.js';

/** What the caller gets: a value, or the error it threw synchronously, or the rejection. */
async function outcome(call: () => unknown): Promise<{ sync: boolean; error?: unknown; value?: unknown }> {
  let returned: unknown;
  try {
    returned = call();
  } catch (error) {
    return { sync: true, error };
  }
  if (!(returned instanceof Promise)) return { sync: true, value: returned };
  try {
    return { sync: false, value: await returned };
  } catch (error) {
    return { sync: false, error };
  }
}

const circular = (): object => {
  const node: Record<string, unknown> = {};
  node.self = node;
  return node;
};

const deepCircular = (): object => {
  const root: Record<string, unknown> = {};
  root.children = [{ parent: new Map([['root', root]]) }];
  return root;
};

/** Arguments with no stable encoding (SPEC §4), each made fresh per test. */
const unencodable: [string, () => unknown][] = [
  ['a function', () => () => 1],
  ['a symbol', () => Symbol('s')],
  ['a circular structure', circular],
  ['a deep circular structure', deepCircular],
  ['a WeakMap', () => new WeakMap()],
  ['a WeakSet', () => new WeakSet()],
  ['a Promise', () => Promise.resolve(1)],
];

describe('keys through the call path', () => {
  let memory: MemoryBackend;

  beforeEach(() => {
    CacheModule.reset();
    memory = new MemoryBackend();
    CacheModule.register(memory);
  });

  describe('key shape', () => {
    it('is name:arguments for cached(fn)', () => {
      const lookup = cached((id: string, filter: object) => [id, filter], { name: 'lookup' });
      lookup('42', { active: true, role: undefined });
      expect(memory.has('lookup:"42",{"active":t}')).to.equal(true);
    });

    it('is Class.method:arguments for a decorated method', async () => {
      class Reports {
        @Cached()
        async calculateValue(region: string, year: number) {
          return `${region}/${year}`;
        }
      }
      await new Reports().calculateValue('eu', 2024);
      expect(memory.get('Reports.calculateValue:"eu",2024')).to.equal('eu/2024');
    });

    it('starts with keyPrefix as is, then namespace and a colon', () => {
      CacheModule.configure({ keyPrefix: 'shop/' });
      const price = cached((sku: string) => sku.length, { name: 'price', namespace: 'v3' });
      const stock = cached((sku: string) => sku.length, { name: 'stock' });
      price('A-1');
      stock('A-1');
      expect(memory.has('shop/v3:price:"A-1"')).to.equal(true);
      expect(memory.has('shop/stock:"A-1"')).to.equal(true);
    });

    it('reports the hoard key in events', () => {
      const keys: string[] = [];
      CacheModule.configure({ keyPrefix: 'app:' });
      CacheModule.on('set', (event) => keys.push(event.key));
      const total = cached((items: Map<string, number>) => items.size, { name: 'total', namespace: 'cart' });
      total(
        new Map([
          ['b', 2],
          ['a', 1],
        ]),
      );
      expect(keys).to.deep.equal(['app:cart:total:M["a":1,"b":2]']);
    });

    it('uses a custom key unscoped by method, under keyPrefix and namespace', () => {
      CacheModule.configure({ keyPrefix: 'app:' });
      const byId = sinon.spy((id: number) => ({ id, via: 'byId' }));
      const byIdAgain = sinon.spy((id: number) => ({ id, via: 'byIdAgain' }));
      const options = { namespace: 'users', key: (id: number) => `user:${id}` };
      const first = cached(byId, { ...options, name: 'byId' });
      const second = cached(byIdAgain, { ...options, name: 'byIdAgain' });
      expect(first(7)).to.deep.equal({ id: 7, via: 'byId' });
      // Another function, same custom key: it shares the entry on purpose.
      expect(second(7)).to.deep.equal({ id: 7, via: 'byId' });
      expect(byIdAgain.called).to.equal(false);
      expect(memory.has('app:users:user:7')).to.equal(true);
    });

    it('shares a fixed custom key between methods of different classes', async () => {
      class Catalog {
        @Cached({ key: 'catalog' })
        async load() {
          return ['from Catalog'];
        }
      }
      class Admin {
        @Cached({ key: 'catalog' })
        async catalog() {
          return ['from Admin'];
        }
      }
      expect(await new Catalog().load()).to.deep.equal(['from Catalog']);
      expect(await new Admin().catalog()).to.deep.equal(['from Catalog']);
      expect(memory.has('catalog')).to.equal(true);
    });
  });

  describe('SPEC §4 pairs end to end', () => {
    const distinct: [unknown[], unknown[]][] = [
      [['a,b'], ['a', 'b']],
      [[1], ['1']],
      [[null], [undefined]],
      [[undefined], []],
      [[[1, [2]]], [[[1], 2]]],
      [['x:y'], ['x', 'y']],
      [[1n], [1]],
      [[new Date(0)], [new Date(1)]],
      [[new Map([[1, 2]])], [new Map([[2, 1]])]],
      [[new Set([1])], [new Set(['1'])]],
      [[Buffer.from([1])], [Buffer.from([2])]],
    ];
    const same: [unknown[], unknown[]][] = [
      [[{ a: 1, b: 2 }], [{ b: 2, a: 1 }]],
      [
        [
          new Map([
            ['x', 1],
            ['y', 2],
          ]),
        ],
        [
          new Map([
            ['y', 2],
            ['x', 1],
          ]),
        ],
      ],
      [[new Set([1, 2])], [new Set([2, 1])]],
      [[Buffer.from([1, 2])], [new Uint8Array([1, 2])]],
      [[0], [-0]],
      [[{ a: undefined }], [{}]],
    ];

    let calls = 0;
    /**
     * How often the body runs for f(...left) twice, then f(...right), on a function of its own.
     * The second call hits, so the call site knows left's key and right is looked up past it.
     */
    function runsFor(left: unknown[], right: unknown[]): number {
      const body = sinon.spy((..._args: unknown[]) => 'value');
      const f = cached(body, { name: `pair${++calls}` });
      f(...left);
      f(...left);
      expect(f(...right)).to.equal('value');
      return body.callCount;
    }

    it('runs the body once per distinct argument list', () => {
      for (const [left, right] of distinct)
        expect(runsFor(left, right), `f(${inspect(left)}) vs f(${inspect(right)})`).to.equal(2);
    });

    it('serves the same arguments in another shape from the cache', () => {
      for (const [left, right] of same) expect(runsFor(left, right), `f(${inspect(left)}) vs f(${inspect(right)})`).to.equal(1);
    });
  });

  describe('arguments without a stable encoding', () => {
    for (const [name, make] of unencodable) {
      it(`${name}: a synchronous function throws CacheKeyError and its body does not run`, async () => {
        const body = sinon.spy((_label: string, _value: unknown) => 'computed');
        const f = cached(body, { name: 'sync.lookup' });
        const result = await outcome(() => f('label', make()));
        expect(result.sync).to.equal(true);
        expect(result.error).to.be.instanceOf(CacheKeyError);
        expect((result.error as CacheKeyError).method).to.equal('sync.lookup');
        expect((result.error as CacheKeyError).argumentIndex).to.equal(1);
        expect((result.error as Error).message).to.match(/sync\.lookup.*argument 1/);
        expect(body.called).to.equal(false);
        expect(memory.size).to.equal(0);
      });

      it(`${name}: an async function rejects with CacheKeyError and its body does not run`, async () => {
        const body = sinon.spy();
        const f = cached(async (value: unknown) => body(value), { name: 'async.lookup' });
        const result = await outcome(() => f(make()));
        expect(result.sync).to.equal(false);
        expect(result.error).to.be.instanceOf(CacheKeyError);
        expect((result.error as CacheKeyError).method).to.equal('async.lookup');
        expect((result.error as CacheKeyError).argumentIndex).to.equal(0);
        expect(body.called).to.equal(false);
      });

      it(`${name}: is fine with a custom key function`, async () => {
        const body = sinon.spy(async (_id: string, _extra: unknown) => 'computed');
        const f = cached(async (id: string, extra: unknown) => body(id, extra), {
          name: 'custom',
          key: (id: string) => `item:${id}`,
        });
        expect(await f('1', make())).to.equal('computed');
        expect(await f('1', make())).to.equal('computed');
        expect(body.callCount).to.equal(1);
        expect(memory.has('item:1')).to.equal(true);
      });
    }

    it('names Class.method for a decorated method', async () => {
      const body = sinon.spy();
      class Jobs {
        @Cached()
        async schedule(when: Date, callback: () => void) {
          body(when, callback);
        }
      }
      const result = await outcome(() => new Jobs().schedule(new Date(0), () => undefined));
      expect(result.error).to.be.instanceOf(CacheKeyError);
      expect((result.error as CacheKeyError).method).to.equal('Jobs.schedule');
      expect((result.error as CacheKeyError).argumentIndex).to.equal(1);
      expect((result.error as Error).message)
        .to.contain('Jobs.schedule')
        .and.to.contain('argument 1');
      expect(body.called).to.equal(false);
    });
  });

  describe("the caller's arguments", () => {
    it('reach the body as the same, unchanged objects', () => {
      const body = sinon.spy((..._args: unknown[]) => 'computed');
      const f = cached(body, { name: 'identity' });
      const filter = { z: 1, a: { y: 2, b: 3 }, gone: undefined };
      const tags = new Set(['b', 'a']);
      const weights = new Map([
        ['y', 1],
        ['x', 2],
      ]);
      const bytes = Buffer.from([3, 1, 2]);
      const since = new Date(5);
      const list = [-0, filter];
      f(filter, tags, weights, bytes, since, list);
      const received = body.firstCall.args;
      expect(received).to.have.length(6);
      [filter, tags, weights, bytes, since, list].forEach((argument, i) => expect(received[i]).to.equal(argument));
      // Encoding sorts copies of the keys, never the caller's objects.
      expect(Object.keys(filter)).to.deep.equal(['z', 'a', 'gone']);
      expect(Object.keys(filter.a)).to.deep.equal(['y', 'b']);
      expect([...tags]).to.deep.equal(['b', 'a']);
      expect([...weights.keys()]).to.deep.equal(['y', 'x']);
      expect([...bytes]).to.deep.equal([3, 1, 2]);
      expect(Object.is(list[0], -0)).to.equal(true);
    });

    it('are keyed by what they hold now, after the same object hit before', () => {
      const body = sinon.spy((query: { region: string }) => query.region);
      const f = cached(body, { name: 'changed' });
      const query = { region: 'eu' };
      f(query);
      expect(f(query)).to.equal('eu');
      query.region = 'us';
      expect(f(query)).to.equal('us');
      expect(body.callCount).to.equal(2);
    });

    it('are keyed as they were when called, when the caller changes them while an asynchronous lookup is under way', async () => {
      CacheModule.register(new AsyncMemoryBackend());
      const body = sinon.spy((query: { region: string }) => query.region);
      const f = cached(async (query: { region: string }) => body(query), { name: 'changed.async' });
      await f({ region: 'eu' });
      const query = { region: 'eu' };
      const hit = f(query);
      query.region = 'us';
      expect(await hit).to.equal('eu');
      expect(await f({ region: 'us' })).to.equal('us');
      expect(body.callCount).to.equal(2);
    });

    it('may be frozen', () => {
      const f = cached((query: { a: number[] }) => query.a.length, { name: 'frozen' });
      const query = Object.freeze({ a: Object.freeze([1, 2]) as number[] });
      expect(f(query)).to.equal(2);
      expect(f(Object.freeze({ a: [3, 4] }))).to.equal(2);
    });
  });
});
