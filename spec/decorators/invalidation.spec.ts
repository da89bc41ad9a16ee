import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheEvict, CacheModule, CachePut, MemoryBackend, CacheConfigError, type CacheEvent } from 'hoard';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { flavour } from '../support/flavour.js';

describe(`@CacheEvict, @CachePut and invalidate [${flavour} decorators]`, () => {
  let memory: MemoryBackend;
  let shared: AsyncMemoryBackend;
  let loads: sinon.SinonSpy;

  class Users {
    names = new Map<string, string>([['1', 'Ada']]);

    @Cached({ backend: 'shared', key: (id: string) => `user:${id}` })
    async user(id: string) {
      loads(id);
      return this.names.get(id);
    }

    @CacheEvict({ backend: 'shared', key: (id: string) => `user:${id}` })
    async rename(id: string, name: string) {
      if (!name) throw new Error('empty name');
      this.names.set(id, name);
    }

    @CacheEvict({ backend: 'shared', key: (id: string) => `user:${id}`, beforeInvocation: true })
    async purge(id: string, fail: boolean) {
      if (fail) throw new Error('purge failed');
    }

    @CacheEvict({ backend: 'shared', allEntries: true })
    async reload() {}

    @CachePut({ backend: 'shared', key: (id: string) => `user:${id}`, ttl: 60 })
    async save(id: string, name: string) {
      this.names.set(id, name);
      return name;
    }
  }

  beforeEach(() => {
    CacheModule.reset();
    memory = new MemoryBackend();
    shared = new AsyncMemoryBackend();
    CacheModule.register(memory);
    CacheModule.register('shared', shared);
    loads = sinon.spy();
  });

  afterEach(() => sinon.restore());

  it('@CacheEvict deletes the entry after the method succeeds', async () => {
    const users = new Users();
    expect(await users.user('1')).to.equal('Ada');
    await users.rename('1', 'Grace');
    expect(await users.user('1')).to.equal('Grace');
    expect(loads.callCount).to.equal(2);
  });

  it('@CacheEvict keeps the entry when the method fails', async () => {
    const users = new Users();
    await users.user('1');
    await users.rename('1', '').catch(() => undefined);
    expect(await shared.has('user:1')).to.equal(true);
  });

  it('@CacheEvict with beforeInvocation evicts even when the method then fails', async () => {
    const users = new Users();
    await users.user('1');
    await users.purge('1', true).catch(() => undefined);
    expect(await shared.has('user:1')).to.equal(false);
  });

  it('@CacheEvict with allEntries clears that backend only', async () => {
    const users = new Users();
    await users.user('1');
    memory.set('elsewhere', 1);
    await users.reload();
    expect(await shared.has('user:1')).to.equal(false);
    expect(memory.has('elsewhere')).to.equal(true);
  });

  it('@CacheEvict and @CachePut need a key, unless allEntries', () => {
    expect(() => CacheEvict({})).to.throw(TypeError, /@CacheEvict.*key/);
    expect(() => CacheEvict({ allEntries: true })).not.to.throw();
    expect(() => CachePut({} as never)).to.throw(TypeError, /@CachePut.*key/);
  });

  it('@CachePut always runs the method and stores its result', async () => {
    const users = new Users();
    await users.save('2', 'Linus');
    await users.save('2', 'Linus');
    expect(await shared.get('user:2')).to.equal('Linus');
    expect(await users.user('2')).to.equal('Linus');
    expect(loads.called).to.equal(false);
  });

  it('works on synchronous methods over a memory backend, synchronously', () => {
    class Counter {
      value = 0;
      @Cached({ key: 'count' })
      read() {
        return this.value;
      }
      @CacheEvict({ key: 'count' })
      bump() {
        this.value++;
        return this.value;
      }
      @CachePut({ key: 'count' })
      reset() {
        this.value = 0;
        return 0;
      }
    }
    const counter = new Counter();
    expect(counter.read()).to.equal(0);
    expect(counter.bump()).to.equal(1);
    expect(counter.read()).to.equal(1);
    counter.value = 10;
    expect(counter.reset()).to.equal(0);
    expect(memory.get('count')).to.equal(0);
  });

  it('CacheModule.invalidate deletes the entry @Cached stored for those arguments', async () => {
    const body = sinon.spy(async (region: string, year: number) => `${region}${year}`);
    class Reports {
      @Cached()
      async calculateValue(region: string, year: number) {
        return body(region, year);
      }
    }
    const reports = new Reports();
    await reports.calculateValue('eu', 2024);
    await reports.calculateValue('us', 2024);
    expect(await CacheModule.invalidate(Reports, 'calculateValue', 'eu', 2024)).to.equal(true);
    expect(await CacheModule.invalidate(Reports, 'calculateValue', 'eu', 2024)).to.equal(false);
    await reports.calculateValue('eu', 2024);
    await reports.calculateValue('us', 2024);
    expect(body.args.map(([region]) => region)).to.deep.equal(['eu', 'us', 'eu']);
  });

  it('CacheModule.invalidate refuses a method that is not cached', async () => {
    class Plain {
      async m() {}
    }
    const error = await CacheModule.invalidate(Plain, 'm').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(CacheConfigError);
    expect((error as Error).message).to.contain('Plain.m');
  });

  it('emits evict for @CacheEvict and invalidate, set for @CachePut', async () => {
    const events: [string, CacheEvent][] = [];
    for (const name of ['set', 'evict'] as const) CacheModule.on(name, (event) => events.push([name, event]));
    const users = new Users();
    await users.save('3', 'Ken');
    await users.rename('3', 'Rob');
    expect(events).to.deep.equal([
      ['set', { backend: 'shared', key: 'user:3', method: 'Users.save' }],
      ['evict', { backend: 'shared', key: 'user:3', method: 'Users.rename' }],
    ]);
  });
});
