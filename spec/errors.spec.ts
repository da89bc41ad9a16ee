import { expect } from 'chai';
import * as hoard from 'hoard';
import {
  Cached,
  CacheArgumentError,
  CacheBackendError,
  CacheConfigError,
  CacheError,
  CacheErrorCode,
  CacheIntegrityError,
  CacheKeyError,
  CacheModule,
  CacheSerializationError,
  CacheValueTooLargeError,
  MemoryBackend,
  RedisBackend,
} from 'hoard';

/** Every error class the package exports, by name. */
const exportedErrors = Object.entries(hoard as Record<string, unknown>).filter(
  (entry): entry is [string, new (...args: never[]) => Error] =>
    typeof entry[1] === 'function' && entry[1].prototype instanceof Error,
);

describe('errors', () => {
  beforeEach(() => CacheModule.reset());

  it('gives each error class its own stable code from CacheErrorCode', () => {
    const made: Record<string, Error & { code?: string }> = {
      CacheArgumentError: new CacheArgumentError('bad'),
      CacheConfigError: new CacheConfigError('setup'),
      CacheKeyError: new CacheKeyError('C.m', 0, 'is a function'),
      CacheBackendError: new CacheBackendError('down', 'get', 'k'),
      CacheValueTooLargeError: new CacheValueTooLargeError('big', 'set', 'k'),
      CacheSerializationError: new CacheSerializationError('cyclic'),
      CacheIntegrityError: new CacheIntegrityError('tampered', 'tampered', 'k'),
    };
    expect(
      exportedErrors
        .map(([name]) => name)
        .filter((name) => name !== 'CacheError')
        .sort(),
    ).to.deep.equal(Object.keys(made).sort());
    const codes = Object.values(made).map((error) => error.code);
    expect(new Set(codes).size).to.equal(codes.length);
    expect([...codes].sort()).to.deep.equal(Object.values(CacheErrorCode).sort());
    expect(made.CacheConfigError!.code).to.equal('HOARD_CONFIG');
    expect(made.CacheKeyError!.code).to.equal('HOARD_KEY');
    for (const [name, error] of Object.entries(made)) expect(error.code, name).to.match(/^HOARD_[A-Z_]+$/);
  });

  it('makes every error a CacheError except bad arguments, which are TypeErrors with a code', () => {
    for (const [name, ErrorClass] of exportedErrors) {
      if (name === 'CacheError') continue;
      if (name === 'CacheArgumentError') expect(ErrorClass.prototype).to.be.instanceOf(TypeError);
      else expect(ErrorClass.prototype, name).to.be.instanceOf(CacheError);
    }
    const error = new CacheArgumentError('bad');
    expect(error.name).to.equal('TypeError');
    expect(String(error)).to.equal('TypeError: bad');
  });

  it('throws a TypeError with code HOARD_ARGUMENT for a bad value passed to the call', () => {
    const thrown = [
      () => new MemoryBackend({ maxEntries: 0 }),
      () => CacheModule.configure({ defaultTtl: -1 }),
      () => new MemoryBackend().set('k', 1, Number.NaN),
      () => Cached({ ttl: -1 }),
      // Options a remote backend checks before it makes a connection.
      () => new RedisBackend({ lazyConnect: true, compression: { algorithm: 'lz4' as never } }),
      () => new RedisBackend({ lazyConnect: true, integrity: { keys: ['too short'] } }),
    ].map((call) => {
      try {
        call();
      } catch (error) {
        return error;
      }
      return undefined;
    });
    for (const error of thrown) {
      expect(error).to.be.instanceOf(CacheArgumentError);
      expect(error).to.be.instanceOf(TypeError);
      expect((error as CacheArgumentError).code).to.equal(CacheErrorCode.ARGUMENT);
    }
  });

  it('throws a CacheConfigError with code HOARD_CONFIG for a setup found wanting on call', () => {
    class Service {
      @Cached({ backend: 'nowhere' })
      load(): number {
        return 1;
      }
    }
    try {
      new Service().load();
      expect.fail('the call should have thrown');
    } catch (error) {
      expect(error).to.be.instanceOf(CacheConfigError);
      expect((error as CacheConfigError).code).to.equal('HOARD_CONFIG');
    }
  });

  it('reports a counter over a value that is not a number as a failed backend operation', () => {
    const cache = new MemoryBackend();
    cache.set('s', 'text');
    expect(() => cache.increment('s'))
      .to.throw(CacheBackendError, /not a number/)
      .with.property('operation', 'increment');
  });
});
