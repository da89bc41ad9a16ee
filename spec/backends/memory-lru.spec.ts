import { expect } from 'chai';
import fc from 'fast-check';
import sinon from 'sinon';
import { CacheBackendError, MemoryBackend } from 'hoard';

describe('MemoryBackend: LRU, size and TTL policy', () => {
  afterEach(() => sinon.restore());

  it('evicts the least recently used entry past maxEntries; reads count as use', () => {
    const cache = new MemoryBackend({ maxEntries: 3 });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    cache.get('a');
    cache.set('d', 4);
    expect(['a', 'b', 'c', 'd'].filter((key) => cache.has(key))).to.deep.equal(['a', 'c', 'd']);
    cache.set('c', 30);
    cache.set('e', 5);
    expect(['a', 'c', 'd', 'e'].filter((key) => cache.has(key))).to.deep.equal(['c', 'd', 'e']);
    expect(cache.size).to.equal(3);
  });

  it('keeps values by reference', () => {
    const cache = new MemoryBackend();
    const value = { nested: [1] };
    cache.set('v', value);
    expect(cache.get('v')).to.equal(value);
  });

  it('evicts by estimated bytes past maxBytes, and never stores a value larger than the limit', () => {
    const cache = new MemoryBackend({ maxBytes: 1_000 });
    cache.set('small', 'x'.repeat(100));
    cache.set('second', 'y'.repeat(200));
    cache.set('third', 'z'.repeat(200));
    expect(cache.has('small')).to.equal(false);
    expect(cache.has('second')).to.equal(true);
    expect(cache.has('third')).to.equal(true);
    cache.set('huge', 'h'.repeat(1_000));
    expect(cache.has('huge')).to.equal(false);
    expect(cache.has('third')).to.equal(true);
  });

  it('drops an entry once its ttl has passed, to the millisecond', () => {
    const clock = sinon.useFakeTimers({ now: 0 });
    const cache = new MemoryBackend({ defaultTtl: 2 });
    cache.set('default', 1);
    cache.set('short', 1, 0.25);
    cache.set('forever', 1, 0);
    clock.tick(249);
    expect(cache.has('short')).to.equal(true);
    clock.tick(1);
    expect(cache.get('short')).to.equal(undefined);
    clock.tick(1_750);
    expect(cache.has('default')).to.equal(false);
    clock.tick(10 ** 10);
    expect(cache.has('forever')).to.equal(true);
  });

  it('keeps the TTL of an entry it increments', () => {
    const clock = sinon.useFakeTimers({ now: 0 });
    const cache = new MemoryBackend();
    cache.set('n', 5, 1);
    expect(cache.increment('n', 2)).to.equal(7);
    clock.tick(1_000);
    expect(cache.has('n')).to.equal(false);
    expect(() => {
      cache.set('s', 'text');
      cache.increment('s');
    }).to.throw(CacheBackendError, /not a number/);
  });

  it('rejects invalid options and TTLs with a TypeError', () => {
    expect(() => new MemoryBackend({ maxEntries: 0 })).to.throw(TypeError, /maxEntries/);
    expect(() => new MemoryBackend({ maxBytes: -1 })).to.throw(TypeError, /maxBytes/);
    expect(() => new MemoryBackend({ defaultTtl: Number.NaN })).to.throw(TypeError, /defaultTtl/);
    expect(() => new MemoryBackend().set('k', 1, -3)).to.throw(TypeError, /ttl/);
  });

  it('stays consistent under deletes, evictions and churn', () => {
    const cache = new MemoryBackend({ maxEntries: 50 });
    const model = new Map<string, number>();
    for (let i = 0; i < 5_000; i++) {
      const key = `k${(i * 7919) % 120}`;
      if (i % 3 === 0) {
        cache.delete(key);
        model.delete(key);
      } else {
        cache.set(key, i);
        model.delete(key);
        model.set(key, i);
        if (model.size > 50) model.delete(model.keys().next().value!);
      }
    }
    for (const [key, value] of model) expect(cache.get(key)).to.equal(value);
    expect(cache.size).to.equal(model.size);
  });
});

describe('MemoryBackend: agrees with a plain LRU model', () => {
  /** What the backend must hold: a Map in recency order (oldest first), with estimated sizes. */
  class Model {
    readonly entries = new Map<string, string>();
    constructor(
      readonly maxEntries: number,
      readonly maxBytes: number,
    ) {}
    /** The backend's estimate for a string value. */
    static size = (value: string) => 16 + value.length * 2;
    bytes(): number {
      return [...this.entries.values()].reduce((sum, value) => sum + Model.size(value), 0);
    }
    get(key: string): string | undefined {
      const value = this.entries.get(key);
      if (value === undefined) return undefined;
      this.entries.delete(key);
      this.entries.set(key, value);
      return value;
    }
    set(key: string, value: string): void {
      this.entries.delete(key);
      if (Model.size(value) > this.maxBytes) return;
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
      while (this.bytes() > this.maxBytes) this.entries.delete(this.entries.keys().next().value!);
    }
  }

  const operation = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key: fc.nat(40), length: fc.nat(60) }),
    fc.record({ op: fc.constant('get' as const), key: fc.nat(40) }),
    fc.record({ op: fc.constant('delete' as const), key: fc.nat(40) }),
  );

  it('holds the same entries in the same recency order through sets, reads, deletes, evictions and growth', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.option(fc.integer({ min: 100, max: 2_000 }), { nil: undefined }),
        fc.array(operation, { maxLength: 400 }),
        (maxEntries, maxBytes, operations) => {
          const cache = new MemoryBackend({ maxEntries, maxBytes });
          const model = new Model(maxEntries, maxBytes ?? Infinity);
          for (const step of operations) {
            const key = `k${step.key}`;
            if (step.op === 'set') {
              const value = 'v'.repeat(step.length) + step.key;
              cache.set(key, value);
              model.set(key, value);
            } else if (step.op === 'get') {
              expect(cache.get(key), key).to.equal(model.get(key));
            } else {
              expect(cache.delete(key), key).to.equal(model.entries.delete(key));
            }
            expect(cache.size).to.equal(model.entries.size);
          }
          // Whatever evicts next takes the oldest first: the model's keys still held are always its newest ones.
          const order = [...model.entries.keys()];
          for (let i = 0; i <= maxEntries; i++) {
            const held = order.map((key) => cache.has(key));
            expect(held.slice(held.indexOf(true)).every(Boolean) || !held.includes(true), held.join()).to.equal(true);
            cache.set(`filler${i}`, '');
          }
          expect(order.filter((key) => cache.has(key))).to.deep.equal([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('serves an entry set to undefined as present, and gives clear() memory back without losing later writes', () => {
    const cache = new MemoryBackend({ maxEntries: 100 });
    cache.set('u', undefined);
    expect(cache.has('u')).to.equal(true);
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
    cache.clear();
    expect(cache.size).to.equal(0);
    expect(cache.has('k1')).to.equal(false);
    cache.set('after', 1);
    expect(cache.get('after')).to.equal(1);
    expect(cache.size).to.equal(1);
  });
});
