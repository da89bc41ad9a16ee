import { expect } from 'chai';
import sinon from 'sinon';
import { cached, CacheModule, MemoryBackend } from 'hoard';
import { flavour } from '../support/flavour.js';

describe(`cached(fn) [${flavour} build]`, () => {
  let memory: MemoryBackend;

  beforeEach(() => {
    CacheModule.reset();
    memory = new MemoryBackend();
    CacheModule.register(memory);
  });

  it('memoizes a plain function under its name', async () => {
    const body = sinon.spy(async (id: string) => ({ id }));
    const getUser = cached(body, { name: 'getUser', ttl: 60 });
    expect(await getUser('1')).to.deep.equal({ id: '1' });
    expect(await getUser('1')).to.deep.equal({ id: '1' });
    expect(body.callCount).to.equal(1);
    expect(memory.has('getUser:"1"')).to.equal(true);
  });

  it('requires a name', () => {
    expect(() => cached(() => 1, {} as never)).to.throw(TypeError, /name/);
    expect(() => cached(() => 1, { name: '' })).to.throw(TypeError, /name/);
  });

  it('shares entries between functions given the same name, on purpose', () => {
    const first = cached((x: number) => x + 1, { name: 'inc' });
    const second = cached((x: number) => x + 100, { name: 'inc' });
    expect(first(1)).to.equal(2);
    expect(second(1)).to.equal(2);
  });

  it('passes `this` through and stays synchronous for a synchronous function', () => {
    const scale = cached(
      function (this: { factor: number }, x: number) {
        return x * this.factor;
      },
      {
        name: 'scale',
        key: function (this: { factor: number }, x: number) {
          return `${this.factor}:${x}`;
        },
      },
    );
    expect(scale.call({ factor: 2 }, 3)).to.equal(6);
    expect(scale.call({ factor: 3 }, 3)).to.equal(9);
  });

  it('labels stats with the name', async () => {
    const f = cached(async () => 1, { name: 'one' });
    await f();
    await f();
    expect(CacheModule.stats().methods.one).to.deep.equal({ hits: 1, misses: 1, errors: 0, hitRatio: 0.5 });
  });
});
