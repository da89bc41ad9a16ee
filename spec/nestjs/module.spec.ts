/**
 * HoardModule in real Nest applications (legacy decorators only: Nest needs them). Backends here
 * are in-process; spec/nestjs/app.spec.ts runs an HTTP app against a real redis-server.
 */
import 'reflect-metadata';
import { Injectable, Logger, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheArgumentError, CacheModule, MemoryBackend, NullBackend, type CacheBackend } from 'hoard';
import {
  getCacheBackendToken,
  HOARD_MODULE_OPTIONS,
  HoardModule,
  HoardTestingModule,
  InjectCacheBackend,
  type HoardModuleOptions,
  type HoardOptionsFactory,
} from 'hoard/nestjs';
import { RecordingBackend } from 'hoard/testing';
import { AsyncMemoryBackend } from '../support/async-backend.js';

let computed = 0;

@Injectable()
class Prices {
  @Cached({ ttl: 60 })
  price(sku: string): number {
    computed++;
    return sku.length;
  }
}

/** Calls a cached method in its own onModuleInit, as a feature module warming up would. */
@Injectable()
class Warmup implements OnModuleInit, OnModuleDestroy {
  warmed: number | undefined;
  atDestroy: number | undefined;
  constructor(private readonly prices: Prices) {}
  onModuleInit() {
    this.warmed = this.prices.price('warm');
  }
  onModuleDestroy() {
    this.atDestroy = this.prices.price('warm');
  }
}

@Injectable()
class BackendUser {
  constructor(
    @InjectCacheBackend() readonly main: CacheBackend,
    @InjectCacheBackend('shared') readonly shared: CacheBackend,
  ) {}
}

@Module({ providers: [Prices, Warmup, BackendUser], exports: [Prices] })
class PricesModule {}

async function app(imports: unknown[]) {
  const moduleRef = await Test.createTestingModule({ imports: [...(imports as never[]), PricesModule] }).compile();
  return moduleRef.createNestApplication({ logger: false }).init();
}

describe('HoardModule [legacy decorators, NestJS 11]', () => {
  beforeEach(() => {
    CacheModule.reset();
    computed = 0;
  });
  afterEach(() => sinon.restore());

  it('forRoot registers before any onModuleInit: a feature module warms its cache there', async () => {
    const memory = new MemoryBackend();
    const nest = await app([HoardModule.forRoot({ backends: memory })]);
    expect(nest.get(Warmup).warmed).to.equal(4);
    expect(memory.get('Prices.price:"warm"')).to.equal(4);
    expect(nest.get(Prices).price('warm')).to.equal(4);
    expect(computed).to.equal(1);
    await nest.close();
  });

  it('forRootAsync with ConfigService: options from configuration', async () => {
    const memory = new MemoryBackend();
    const nest = await app([
      ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ CACHE_PREFIX: 'shop:' })] }),
      HoardModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService): HoardModuleOptions => ({
          backends: { default: memory, shared: new NullBackend() },
          keyPrefix: config.getOrThrow<string>('CACHE_PREFIX'),
        }),
      }),
    ]);
    expect(memory.get('shop:Prices.price:"warm"')).to.equal(4);
    expect(nest.get(BackendUser).main).to.equal(memory);
    expect(nest.get(BackendUser).shared).to.be.instanceOf(NullBackend);
    await nest.close();
  });

  it('forRootAsync with useClass and with useExisting', async () => {
    const memory = new MemoryBackend();
    @Injectable()
    class Options implements HoardOptionsFactory {
      createHoardOptions(): HoardModuleOptions {
        return { backends: memory };
      }
    }
    @Module({ providers: [Options], exports: [Options] })
    class OptionsModule {}
    for (const async of [{ useClass: Options }, { imports: [OptionsModule], useExisting: Options }]) {
      CacheModule.reset();
      const nest = await app([HoardModule.forRootAsync(async)]);
      expect(CacheModule.get()).to.equal(memory);
      expect(nest.get(getCacheBackendToken())).to.equal(memory);
      await nest.close();
    }
    expect(() => HoardModule.forRootAsync({})).to.throw(
      CacheArgumentError,
      /forRootAsync needs exactly one of useFactory, useClass or useExisting/,
    );
    expect(() => HoardModule.forRoot({} as never)).to.throw(CacheArgumentError, /HoardModule\.forRoot .*need `backends`/);
  });

  it('overrideProvider on a backend token replaces the backend that is registered', async () => {
    const real = new MemoryBackend();
    const close = sinon.spy(real, 'close');
    const stand = new MemoryBackend();
    const moduleRef = await Test.createTestingModule({ imports: [HoardModule.forRoot({ backends: real }), PricesModule] })
      .overrideProvider(getCacheBackendToken())
      .useValue(stand)
      .compile();
    const nest = await moduleRef.createNestApplication({ logger: false }).init();
    expect(CacheModule.get()).to.equal(stand);
    expect(stand.get('Prices.price:"warm"')).to.equal(4);
    expect(real.get('Prices.price:"warm"')).to.equal(undefined);
    await nest.close();
    expect(close.callCount, 'the backend it was given is still its own to close').to.equal(1);
  });

  it('overrideProvider on the options skips the real factory', async () => {
    const factory = sinon.spy((): HoardModuleOptions => ({ backends: new MemoryBackend() }));
    const moduleRef = await Test.createTestingModule({
      imports: [HoardModule.forRootAsync({ useFactory: factory }), PricesModule],
    })
      .overrideProvider(HOARD_MODULE_OPTIONS)
      .useValue({ backends: new NullBackend() })
      .compile();
    const nest = await moduleRef.createNestApplication({ logger: false }).init();
    expect(factory.called).to.equal(false);
    expect(CacheModule.get()).to.be.instanceOf(NullBackend);
    nest.get(Prices).price('warm');
    expect(computed).to.equal(2);
    await nest.close();
  });

  it('HoardTestingModule gives a module a recording backend under the default and the names asked for', async () => {
    const nest = await app([HoardTestingModule.forRoot({ backend: 'recording', names: ['shared'] })]);
    const recording = nest.get<RecordingBackend>(getCacheBackendToken());
    expect(recording).to.be.instanceOf(RecordingBackend);
    expect(nest.get(BackendUser).shared).to.equal(recording);
    expect(recording.count('set')).to.equal(1);
    await nest.close();
    for (const backend of ['memory', 'null'] as const) {
      const other = await app([HoardTestingModule.forRoot({ backend })]);
      expect(CacheModule.get()).to.be.instanceOf(backend === 'memory' ? MemoryBackend : NullBackend);
      await other.close();
    }
  });

  it('on application shutdown, after every onModuleDestroy, it unregisters and closes the backends it was given', async () => {
    const memory = new MemoryBackend();
    const close = sinon.spy(memory, 'close');
    const nest = await app([HoardModule.forRoot({ backends: { default: memory, alias: memory } })]);
    await nest.close();
    expect(nest.get(Warmup).atDestroy, 'the cache still answered in onModuleDestroy').to.equal(4);
    expect(close.callCount).to.equal(1);
    expect(() => CacheModule.get()).to.throw(/no cache backend is registered as 'default'/);
    expect(() => CacheModule.get('alias')).to.throw(/'alias'/);
  });

  it("two applications in one process: closing A leaves B's registration and backend alone", async () => {
    const a = new MemoryBackend();
    const b = new MemoryBackend();
    const closeA = sinon.spy(a, 'close');
    const closeB = sinon.spy(b, 'close');
    const appA = await app([HoardModule.forRoot({ backends: a })]);
    const appB = await app([HoardModule.forRoot({ backends: b })]);
    expect(CacheModule.get()).to.equal(b);
    await appA.close();
    expect(closeA.callCount).to.equal(1);
    expect(closeB.called).to.equal(false);
    expect(CacheModule.get()).to.equal(b);
    appB.get(Prices).price('after-a');
    expect(b.get('Prices.price:"after-a"')).to.equal(7);
    await appB.close();
    expect(closeB.callCount).to.equal(1);
    expect(() => CacheModule.get()).to.throw(/no cache backend/);
  });

  it("logs error events with Nest's Logger, or to the logger given, or nowhere with logger: false", async () => {
    const failing = (): CacheBackend => {
      const backend = new AsyncMemoryBackend();
      sinon.stub(backend, 'lookup').rejects(new Error('connection reset'));
      return backend;
    };
    @Injectable()
    class Remote {
      @Cached({ backend: 'remote' })
      async value() {
        return 'computed';
      }
    }
    @Module({ providers: [Remote] })
    class RemoteModule {}
    const run = async (options: Partial<HoardModuleOptions>) => {
      const moduleRef = await Test.createTestingModule({
        imports: [HoardModule.forRoot({ backends: { remote: failing() }, ...options }), RemoteModule],
      }).compile();
      const nest = await moduleRef.createNestApplication({ logger: false }).init();
      expect(await nest.get(Remote).value()).to.equal('computed');
      await nest.close();
    };
    const nestError = sinon.stub(Logger.prototype, 'error');
    await run({});
    expect(nestError.callCount).to.equal(1);
    expect(nestError.firstCall.args[0]).to.equal("get on backend 'remote' for Remote.value failed: connection reset");
    const given = { log: sinon.spy(), error: sinon.spy(), warn: sinon.spy() };
    await run({ logger: given });
    expect(given.error.callCount).to.equal(1);
    await run({ logger: false });
    expect(nestError.callCount).to.equal(1);
    expect(given.error.callCount).to.equal(1);
  });
});
