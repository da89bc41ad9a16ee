import { CachedCall } from '../runtime/cached-call.js';
import { validateOptions, type CachedOptions, type CacheEvictOptions, type CachePutOptions } from '../runtime/options.js';
import { EvictCall, PutCall } from '../runtime/write-calls.js';
import { methodDecorator, type HoardMethodDecorator } from './adapter.js';

/**
 * Caches the method's results under a key derived from its arguments (or `options.key`).
 *
 * ```ts
 * class Reports {
 *   @Cached({ ttl: 300 })
 *   async calculateValue(region: string, year: number) { ... }
 * }
 * ```
 */
export function Cached(options: CachedOptions = {}): HoardMethodDecorator {
  validateOptions('@Cached', options);
  return methodDecorator('@Cached', (callee, labelFrom) => new CachedCall(callee, options, labelFrom));
}

/** Deletes the entry for `key` after the method succeeds (or clears the backend with `allEntries`). */
export function CacheEvict(options: CacheEvictOptions): HoardMethodDecorator {
  validateOptions('@CacheEvict', options, { keyRequired: !options?.allEntries });
  return methodDecorator('@CacheEvict', (callee, labelFrom) => new EvictCall(callee, options, labelFrom));
}

/** Always runs the method and stores its result under `key`. */
export function CachePut(options: CachePutOptions): HoardMethodDecorator {
  validateOptions('@CachePut', options, { keyRequired: true });
  return methodDecorator('@CachePut', (callee, labelFrom) => new PutCall(callee, options, labelFrom));
}
