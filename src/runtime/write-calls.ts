import { isThenable } from '../maybe-promise.js';
import { CallSite } from './call-site.js';
import type { CacheEvictOptions, CachePutOptions } from './options.js';

/** Runs `then` after `result` (after it settles successfully, when it is a promise). */
function after(result: unknown, then: (value: unknown) => void | Promise<void>): unknown {
  if (!isThenable(result)) {
    void then(result);
    return result;
  }
  return Promise.resolve(result).then(async (value) => {
    await then(value);
    return value;
  });
}

/** `@CacheEvict`: deletes the call's key (or clears the backend) after the method succeeds, or before it runs. */
export class EvictCall extends CallSite {
  declare protected readonly options: CacheEvictOptions;

  invoke(self: unknown, args: unknown[]): unknown {
    let key: string | undefined;
    try {
      this.resolve(self);
      key = this.options.allEntries ? undefined : this.keyFor(self, args);
    } catch (error) {
      return this.fail(error);
    }
    if (!this.options.beforeInvocation) return after(this.callee.fn.apply(self, args), () => this.evict(key));
    const evicted = this.evict(key);
    return isThenable(evicted) ? evicted.then(() => this.callee.fn.apply(self, args)) : this.callee.fn.apply(self, args);
  }
}

/** `@CachePut`: always runs the method and stores its result under the key. */
export class PutCall extends CallSite {
  declare protected readonly options: CachePutOptions;

  invoke(self: unknown, args: unknown[]): unknown {
    const condition = this.options.condition;
    if (condition !== undefined && !condition.apply(self, args)) return this.callee.fn.apply(self, args);
    let key: string;
    try {
      this.resolve(self);
      key = this.keyFor(self, args);
    } catch (error) {
      return this.fail(error);
    }
    return after(this.callee.fn.apply(self, args), (value) => this.store(self, args, key, value));
  }
}
