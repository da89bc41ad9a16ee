import 'reflect-metadata';
import { expect } from 'chai';
import { defer, firstValueFrom, from, lastValueFrom, map, Observable, of, throwError } from 'rxjs';
import { Cached, CacheConfigError, CacheModule } from 'hoard';
import { AsyncMemoryBackend } from '../support/async-backend.js';
import { flavour } from '../support/flavour.js';
import { useFreshMemoryModule } from '../support/fresh-module.js';

/** A cold Observable that counts the subscriptions that did the work (an HTTP call each). */
function upstream<T>(values: T[]) {
  const counter = { runs: 0 };
  const source = defer(() => {
    counter.runs++;
    return from(values);
  });
  return { counter, source };
}

describe(`@Cached on a method returning an Observable [${flavour} decorators]`, () => {
  useFreshMemoryModule();

  it('caches the one value and returns an Observable of it; the upstream runs once', async () => {
    const { counter, source } = upstream([{ id: 1 }]);
    class Client {
      @Cached({ ttl: 60 })
      fetch(id: number) {
        return source.pipe(map((value) => ({ ...value, asked: id })));
      }
    }
    const client = new Client();
    const first = client.fetch(1);
    expect(first).to.be.instanceOf(Observable);
    expect(await lastValueFrom(first)).to.deep.equal({ id: 1, asked: 1 });
    const second = client.fetch(1);
    expect(second).to.be.instanceOf(Observable);
    expect(await lastValueFrom(second.pipe(map((value: any) => value.asked + 1)))).to.equal(2);
    expect(await firstValueFrom(client.fetch(1))).to.deep.equal({ id: 1, asked: 1 });
    expect(counter.runs).to.equal(1);
    expect(CacheModule.stats().methods['Client.fetch']).to.include({ hits: 2, misses: 1 });
  });

  it('refuses an Observable of several values, or of none, with an error naming the method; nothing is cached', async () => {
    const many = upstream([1, 2]);
    const none = upstream<number>([]);
    class Client {
      @Cached()
      many() {
        return many.source;
      }
      @Cached()
      none() {
        return none.source;
      }
    }
    const client = new Client();
    for (let i = 0; i < 2; i++) {
      await lastValueFrom(client.many()).then(
        () => expect.fail('resolved'),
        (error) =>
          expect(error)
            .to.be.instanceOf(CacheConfigError)
            .with.property('message')
            .that.matches(/Client\.many.*more than one value/),
      );
      await lastValueFrom(client.none()).then(
        () => expect.fail('resolved'),
        (error) =>
          expect(error)
            .to.be.instanceOf(CacheConfigError)
            .with.property('message')
            .that.matches(/Client\.none.*without a value/),
      );
    }
    expect([many.counter.runs, none.counter.runs]).to.deep.equal([2, 2]);
  });

  it("passes an Observable's error to the subscriber and caches nothing", async () => {
    let runs = 0;
    class Client {
      @Cached()
      fail() {
        return defer(() => {
          runs++;
          return throwError(() => new Error('upstream 503'));
        });
      }
    }
    const client = new Client();
    for (let i = 0; i < 2; i++) {
      await lastValueFrom(client.fail()).then(
        () => expect.fail('resolved'),
        (error) => expect(error).to.have.property('message', 'upstream 503'),
      );
    }
    expect(runs).to.equal(2);
  });

  it('refuses an Observable method not known as one on an asynchronous backend, naming the fix, without running it', () => {
    CacheModule.register('remote', new AsyncMemoryBackend());
    let runs = 0;
    class Client {
      @Cached({ backend: 'remote' })
      fetch(): any {
        runs++;
        return of(1);
      }
    }
    expect(() => new Client().fetch()).to.throw(CacheConfigError, /Observable<…>/);
    expect(runs).to.equal(0);
  });

  if (flavour === 'legacy') {
    it('with emitDecoratorMetadata, an Observable return type is known before the first call: a hit on a shared backend', async () => {
      const remote = new AsyncMemoryBackend();
      CacheModule.register('remote', remote);
      const { counter, source } = upstream(['from upstream']);
      class Writer {
        @Cached({ backend: 'remote', key: 'greeting' })
        greeting(): Observable<string> {
          return source;
        }
      }
      class Reader {
        @Cached({ backend: 'remote', key: 'greeting' })
        greeting(): Observable<string> {
          return of('never asked');
        }
      }
      expect(await lastValueFrom(new Writer().greeting())).to.equal('from upstream');
      expect(await remote.get('greeting')).to.equal('from upstream');
      const hit = new Reader().greeting();
      expect(hit).to.be.instanceOf(Observable);
      expect(await lastValueFrom(hit)).to.equal('from upstream');
      expect(counter.runs).to.equal(1);
    });
  }
});
