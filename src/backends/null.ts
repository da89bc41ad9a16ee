import { MISS, type CacheBackend, type CacheEntries } from './backend.js';

/** Caches nothing: every lookup misses. For tests, or to switch caching off by configuration. */
export class NullBackend implements CacheBackend {
  readonly synchronous = true;

  lookup(): typeof MISS {
    return MISS;
  }

  get(): undefined {
    return undefined;
  }

  set(): void {}

  /** True: the value was accepted (and dropped), so whoever asked may go on as if it had stored. */
  add(): boolean {
    return true;
  }

  delete(): boolean {
    return false;
  }

  has(): boolean {
    return false;
  }

  getMany(keys: readonly string[]): undefined[] {
    return keys.map(() => undefined);
  }

  setMany(_entries: CacheEntries): void {}

  deleteMany(): number {
    return 0;
  }

  clear(): void {}

  /** Nothing is kept, so the count starts from 0 every time. */
  increment(_key: string, delta = 1): number {
    return delta;
  }

  decrement(_key: string, delta = 1): number {
    return -delta;
  }

  close(): void {}
}
