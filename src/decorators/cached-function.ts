import { wrap } from './adapter.js';
import { CacheArgumentError } from '../errors.js';
import { isAsyncFunction } from '../runtime/call-site.js';
import { CachedCall } from '../runtime/cached-call.js';
import { validateOptions, type CachedFunctionOptions } from '../runtime/options.js';

/**
 * Memoizes a plain function through the same call path as `@Cached`.
 * `name` is required: it stands in for `Class.method` in keys, so keys stay stable when the
 * code is bundled or minified. Two functions given the same name share entries on purpose.
 *
 * ```ts
 * const getUser = cached(async (id: string) => db.users.find(id), { name: 'getUser', ttl: 60 });
 * ```
 *
 * @typeParam F - the function's own type, kept: the memoized function is called the same way.
 */
export function cached<F extends (...args: any[]) => any>(fn: F, options: CachedFunctionOptions): F {
  if (typeof fn !== 'function') throw new CacheArgumentError(`cached: expected a function, got ${typeof fn}`);
  if (typeof options?.name !== 'string' || options.name === '') {
    throw new CacheArgumentError('cached: `name` is required, so keys stay stable when code is bundled or minified');
  }
  validateOptions(`cached(${options.name})`, options);
  return wrap(new CachedCall({ fn, label: options.name, async: isAsyncFunction(fn) }, options)) as F;
}
