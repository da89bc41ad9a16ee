import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheConfigError, CacheModule, DEFAULT_TTL, MemoryBackend, NullBackend, type CacheEvent } from 'hoard';
import { fakeCacheTime } from 'hoard/testing';

describe('CacheModule', () => {
  beforeEach(() => CacheModule.reset());

  it('registers a default and named backends and returns them', () => {
    const main = new MemoryBackend();
    const other = new NullBackend();
    CacheModule.register(main);
    CacheModule.register('other', other);
    expect(CacheModule.get()).to.equal(main);
    expect(CacheModule.get('other')).to.equal(other);
    expect(() => CacheModule.get('missing')).to.throw(CacheConfigError, /'missing'/);
  });

  it('register() returns the backend it replaced, and closes nothing', () => {
    const first = new MemoryBackend();
    const second = new MemoryBackend();
    const close = sinon.spy(first, 'close');
    expect(CacheModule.register('shared', first)).to.equal(undefined);
    expect(CacheModule.register('shared', second)).to.equal(first);
    expect(CacheModule.register(first)).to.equal(undefined);
    expect(close.called).to.equal(false);
  });

  it('close() leaves a replaced backend to whoever registered it', async () => {
    const replaced = new MemoryBackend();
    const current = new MemoryBackend();
    const closeReplaced = sinon.spy(replaced, 'close');
    const closeCurrent = sinon.spy(current, 'close');
    CacheModule.register(replaced);
    CacheModule.register(current);
    await CacheModule.close();
    expect(closeReplaced.called).to.equal(false);
    expect(closeCurrent.callCount).to.equal(1);
  });

  it('unregister(name, backend) removes the name only while it still maps to that backend', async () => {
    const mine = new MemoryBackend();
    const theirs = new MemoryBackend();
    class Service {
      @Cached()
      m() {
        return 1;
      }
    }
    CacheModule.register(mine);
    CacheModule.register(theirs);
    expect(CacheModule.unregister('default', mine)).to.equal(false);
    expect(CacheModule.get()).to.equal(theirs);
    new Service().m();
    expect(theirs.has('Service.m:')).to.equal(true);
    expect(CacheModule.unregister('default', theirs)).to.equal(true);
    expect(() => CacheModule.get()).to.throw(CacheConfigError);
    expect(() => new Service().m()).to.throw(CacheConfigError, /Service\.m/);
    CacheModule.register('named', mine);
    expect(CacheModule.unregister('named')).to.equal(true);
    expect(CacheModule.unregister('named')).to.equal(false);
  });

  it("a missing backend names hoard and both ways to register it, unambiguous next to Nest's CacheModule", () => {
    class Orders {
      @Cached({ backend: 'shared' })
      m() {
        return 1;
      }
    }
    expect(() => CacheModule.get()).to.throw(
      CacheConfigError,
      "hoard: no cache backend is registered as 'default'. Register one at startup: CacheModule.register(backend) from 'hoard', " +
        "or in a NestJS app HoardModule.forRoot({ backends: backend }) from 'hoard/nestjs'.",
    );
    expect(() => new Orders().m()).to.throw(
      CacheConfigError,
      "hoard: Orders.m: no cache backend is registered as 'shared'. Register one at startup: CacheModule.register('shared', backend) " +
        "from 'hoard', or in a NestJS app HoardModule.forRoot({ backends: { 'shared': backend } }) from 'hoard/nestjs'.",
    );
  });

  it('refuses something that is not a backend', () => {
    expect(() => CacheModule.register({} as never)).to.throw(TypeError, /CacheBackend/);
  });

  it("hands configure()'s defaultTtl only to registered backends: one never registered stores for DEFAULT_TTL", () => {
    const time = fakeCacheTime(sinon);
    try {
      CacheModule.configure({ defaultTtl: 10 });
      const loose = new MemoryBackend();
      const own = new MemoryBackend({ defaultTtl: 20 });
      const registered = new MemoryBackend();
      CacheModule.register(registered);
      const backends = [loose, own, registered];
      for (const cache of backends) cache.set('k', 'v');
      const held = () => backends.map((cache) => cache.get('k'));
      time.advance(10);
      expect(held()).to.deep.equal(['v', 'v', undefined]);
      time.advance(10);
      expect(held()).to.deep.equal(['v', undefined, undefined]);
      time.advance(DEFAULT_TTL - 20.001);
      expect(loose.get('k')).to.equal('v');
      time.advance(0.001);
      expect(loose.get('k')).to.equal(undefined);
    } finally {
      time.restore();
    }
  });

  it('validates configure()', () => {
    expect(() => CacheModule.configure({ defaultTtl: -1 })).to.throw(TypeError, /defaultTtl/);
    expect(() => CacheModule.configure({ keyPrefix: 3 as never })).to.throw(TypeError, /keyPrefix/);
  });

  it('reset() forgets registrations, configuration, listeners and stats', async () => {
    const listener = sinon.spy();
    CacheModule.register(new MemoryBackend());
    CacheModule.configure({ keyPrefix: 'x:', defaultTtl: 5 });
    CacheModule.on('miss', listener);
    class A {
      @Cached()
      async a() {
        return 1;
      }
    }
    await new A().a();
    CacheModule.reset();
    expect(() => CacheModule.get()).to.throw(CacheConfigError);
    expect(CacheModule.stats()).to.deep.equal({ backends: {}, methods: {} });
    const memory = new MemoryBackend();
    CacheModule.register(memory);
    await new A().a();
    expect(memory.has('A.a:')).to.equal(true);
    expect(listener.callCount).to.equal(1);
  });

  it('close() closes every registered backend once', async () => {
    const backend = new MemoryBackend();
    const close = sinon.spy(backend, 'close');
    CacheModule.register(backend);
    CacheModule.register('alias', backend);
    await CacheModule.close();
    expect(close.callCount).to.equal(1);
  });

  it('emits hit and miss with backend, key and method, and off() stops a listener', async () => {
    CacheModule.register(new MemoryBackend());
    const events: [string, CacheEvent][] = [];
    const onHit = (event: CacheEvent) => events.push(['hit', event]);
    CacheModule.on('hit', onHit);
    CacheModule.on('miss', (event) => events.push(['miss', event]));
    class Greeter {
      @Cached()
      greet(name: string) {
        return `hi ${name}`;
      }
    }
    new Greeter().greet('ada');
    new Greeter().greet('ada');
    CacheModule.off('hit', onHit);
    new Greeter().greet('ada');
    const event = { backend: 'default', key: 'Greeter.greet:"ada"', method: 'Greeter.greet' };
    expect(events).to.deep.equal([
      ['miss', event],
      ['hit', event],
    ]);
    expect(() => CacheModule.on('nope' as never, onHit)).to.throw(TypeError, /nope/);
  });

  it('a throwing listener does not break the cached call', async () => {
    CacheModule.register(new MemoryBackend());
    CacheModule.on('miss', () => {
      throw new Error('listener bug');
    });
    const warn = sinon.stub(process, 'emitWarning');
    try {
      class Safe {
        @Cached()
        value() {
          return 5;
        }
      }
      expect(new Safe().value()).to.equal(5);
      expect(warn.calledOnce).to.equal(true);
    } finally {
      warn.restore();
    }
  });

  it('stats() counts hits and misses per backend and per method, with the hit ratio', () => {
    CacheModule.register(new MemoryBackend());
    CacheModule.register('second', new MemoryBackend());
    class S {
      @Cached()
      a(x: number) {
        return x;
      }
      @Cached({ backend: 'second' })
      b(x: number) {
        return x;
      }
    }
    const s = new S();
    for (const x of [1, 1, 1, 2]) s.a(x);
    s.b(1);
    expect(CacheModule.stats()).to.deep.equal({
      backends: {
        default: { hits: 2, misses: 2, errors: 0, hitRatio: 0.5 },
        second: { hits: 0, misses: 1, errors: 0, hitRatio: 0 },
      },
      methods: {
        'S.a': { hits: 2, misses: 2, errors: 0, hitRatio: 0.5 },
        'S.b': { hits: 0, misses: 1, errors: 0, hitRatio: 0 },
      },
    });
  });
});
