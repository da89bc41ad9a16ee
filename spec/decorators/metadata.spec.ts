import 'reflect-metadata';
import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheEvict, CachePut } from 'hoard';
import { flavour } from '../support/flavour.js';
import { useFreshMemoryModule } from '../support/fresh-module.js';

const TAG = Symbol('tag');

/**
 * What a framework's method decorator does (Nest's `@Get`, `@SetMetadata`): reflect-metadata
 * and a property on the method function itself, written in whichever flavour this build uses.
 */
function Tag(value: string): any {
  return (target: unknown, context: unknown, descriptor?: PropertyDescriptor) => {
    const fn = (typeof context === 'object' ? target : descriptor!.value) as Function & { [TAG]?: string };
    Reflect.defineMetadata('tag', value, fn);
    Reflect.defineMetadata(TAG, `${value}!`, fn);
    fn[TAG] = value;
  };
}

const decorators = {
  '@Cached': () => Cached({ ttl: 60 }),
  '@CacheEvict': () => CacheEvict({ key: 'k' }),
  '@CachePut': () => CachePut({ key: 'k' }),
};

describe(`decorators keep what other decorators attached [${flavour} decorators]`, () => {
  useFreshMemoryModule();

  for (const [name, decorator] of Object.entries(decorators)) {
    it(`${name} above or below another decorator: the method keeps its metadata and own properties`, () => {
      class Above {
        @(decorator() as any)
        @Tag('above')
        m() {
          return 1;
        }
      }
      class Below {
        @Tag('below')
        @(decorator() as any)
        m() {
          return 1;
        }
      }
      for (const [Class, value] of [
        [Above, 'above'],
        [Below, 'below'],
      ] as const) {
        const method = Class.prototype.m as Function & { [TAG]?: string };
        expect(Reflect.getMetadata('tag', method), `${Class.name}: string key`).to.equal(value);
        expect(Reflect.getMetadata(TAG, method), `${Class.name}: symbol key`).to.equal(`${value}!`);
        expect(method[TAG], `${Class.name}: own property`).to.equal(value);
        expect(method.name).to.equal('m');
      }
    });
  }

  it('@Cached above another decorator still caches', () => {
    const body = sinon.spy(() => 7);
    class Service {
      @Cached()
      @Tag('t')
      m() {
        return body();
      }
    }
    expect(new Service().m()).to.equal(7);
    expect(new Service().m()).to.equal(7);
    expect(body.callCount).to.equal(1);
  });
});
