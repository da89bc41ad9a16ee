/**
 * One process, both builds: this suite imports hoard's ES module build (as every spec does) and
 * requires its CommonJS build beside it, as an application does when its own code imports
 * hoard and a CommonJS dependency (or a Jest-compiled module) requires it. The two are separate
 * module instances; everything users can tell apart must still be one registry.
 */
import { expect } from 'chai';
import { createRequire } from 'node:module';
import * as esm from 'hoard';
import * as esmTesting from 'hoard/testing';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { useFreshMemoryModule } from '../support/fresh-module.js';

const require = createRequire(import.meta.url);
const cjs = require('hoard') as typeof esm;
const cjsTesting = require('hoard/testing') as typeof esmTesting;

describe('packaging: the ES module and CommonJS builds loaded in one process', () => {
  const memory = useFreshMemoryModule();

  it('are two module instances (so the rest of this suite means something)', () => {
    expect(require.resolve('hoard')).to.match(/[/\\]dist[/\\]cjs[/\\]index\.js$/);
    expect(cjs.CacheModule).to.not.equal(esm.CacheModule);
    expect(cjs.MemoryBackend).to.not.equal(esm.MemoryBackend);
  });

  it('share registrations and configuration', async () => {
    const backend = new cjs.MemoryBackend();
    cjs.CacheModule.register('other', backend);
    cjs.CacheModule.configure({ keyPrefix: 'app:' });
    let runs = 0;
    const double = esm.cached(async (n: number) => n * 2 + runs++, { name: 'double', backend: 'other' });
    expect(await double(2)).to.equal(4);
    expect(await double(2)).to.equal(4);
    expect(esm.CacheModule.get('other')).to.equal(backend);
    expect(backend.has('app:double:2')).to.equal(true);
  });

  it("invalidate(Class, 'method') finds a method decorated through the other copy, both ways", async () => {
    class ThroughCjs {
      runs = 0;
      @cjs.Cached()
      async value(id: string) {
        return `${id}:${++this.runs}`;
      }
    }
    class ThroughEsm {
      runs = 0;
      @esm.Cached()
      async value(id: string) {
        return `${id}:${++this.runs}`;
      }
    }
    const a = new ThroughCjs();
    const b = new ThroughEsm();
    expect([await a.value('x'), await b.value('x')]).to.deep.equal(['x:1', 'x:1']);
    expect(await esm.CacheModule.invalidate(ThroughCjs, 'value', 'x')).to.equal(true);
    expect(await cjs.CacheModule.invalidate(ThroughEsm, 'value', 'x')).to.equal(true);
    expect([await a.value('x'), await b.value('x')]).to.deep.equal(['x:2', 'x:2']);
    await esm.CacheModule.invalidate(ThroughCjs, 'value');
    await cjs.CacheModule.invalidate(ThroughEsm, 'value');
    expect([await a.value('x'), await b.value('x')]).to.deep.equal(['x:3', 'x:3']);
  });

  it('a method without @Cached is refused by either copy', async () => {
    class Plain {
      async value() {
        return 1;
      }
    }
    for (const copy of [esm, cjs]) {
      const error = await copy.CacheModule.invalidate(Plain, 'value').then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).to.be.instanceOf(esm.CacheConfigError).and.instanceOf(cjs.CacheConfigError);
      expect((error as Error).message).to.contain('Plain.value is not decorated with @Cached');
    }
  });

  it("errors thrown by one copy are instances of the other copy's classes", () => {
    const fromCjs = new cjs.CacheValueTooLargeError('too large', 'set', 'k');
    for (const copy of [esm, cjs]) {
      expect(fromCjs).to.be.instanceOf(copy.CacheValueTooLargeError);
      expect(fromCjs).to.be.instanceOf(copy.CacheBackendError);
      expect(fromCjs).to.be.instanceOf(copy.CacheError);
      expect(fromCjs).to.not.be.instanceOf(copy.CacheKeyError);
      expect(fromCjs).to.not.be.instanceOf(copy.CacheSerializationError);
    }
    expect(new esm.CacheConfigError('x')).to.be.instanceOf(cjs.CacheConfigError).and.not.instanceOf(cjs.CacheBackendError);
    expect(new Error('x')).to.not.be.instanceOf(cjs.CacheError);
    expect({ name: 'CacheError' }).to.not.be.instanceOf(esm.CacheError);
    // Bad arguments too, though they are TypeErrors rather than CacheErrors.
    const badArgument = new cjs.CacheArgumentError('bad');
    expect(badArgument).to.be.instanceOf(esm.CacheArgumentError).and.instanceOf(TypeError).and.not.instanceOf(esm.CacheError);
    expect(new TypeError('x')).to.not.be.instanceOf(esm.CacheArgumentError);
    // A user's own class of the same name is not hoard's.
    class CacheError extends Error {}
    expect(new CacheError()).to.not.be.instanceOf(esm.CacheError);
  });

  it("an entry that the other copy's serializer cannot read is a miss, and the new value replaces it", async () => {
    // As a RedisBackend made through the CommonJS build reports an entry it cannot decode.
    class Unreadable extends AsyncMemoryBackend {
      broken = true;
      override async lookup(key: string) {
        if (this.broken && key === 'value:') {
          this.broken = false;
          throw new cjs.CacheSerializationError(`cannot read ${key}`);
        }
        return super.lookup(key);
      }
    }
    esm.CacheModule.register(new Unreadable());
    let runs = 0;
    const value = esm.cached(async () => ++runs, { name: 'value' });
    expect(await value()).to.equal(1);
    expect(await value()).to.equal(1);
    expect(esm.CacheModule.stats().methods['value']).to.include({ misses: 1, hits: 1, errors: 1 });
  });

  it('share listeners and stats', async () => {
    const seen: string[] = [];
    esm.CacheModule.on('miss', (event) => seen.push(`miss ${event.method}`));
    cjs.CacheModule.on('hit', (event) => seen.push(`hit ${event.method}`));
    const esmValue = esm.cached(async () => 1, { name: 'esmValue' });
    const cjsValue = cjs.cached(async () => 2, { name: 'cjsValue' });
    await esmValue();
    await cjsValue();
    await cjsValue();
    expect(seen).to.deep.equal(['miss esmValue', 'miss cjsValue', 'hit cjsValue']);
    expect(cjs.CacheModule.stats()).to.deep.equal(esm.CacheModule.stats());
    expect(esm.CacheModule.stats().methods['cjsValue']).to.include({ hits: 1, misses: 1 });
    expect(memory().has('esmValue:')).to.equal(true);
  });

  it('hoard/testing from either copy drives the shared registry', async () => {
    const recording = new cjsTesting.RecordingBackend(new esm.MemoryBackend());
    esm.CacheModule.register(recording);
    const value = esm.cached(async () => 1, { name: 'recorded' });
    await value();
    expect(recording.calls.map((call) => call.operation)).to.include('set');
    expect(esmTesting.RecordingBackend).to.not.equal(cjsTesting.RecordingBackend);
  });
});
