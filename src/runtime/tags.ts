import type { CacheBackend, MaybePromise } from '../backends/backend.js';
import { moduleConfig } from '../module/config.js';
import { isThenable } from './call-site.js';

/*
 * The tag index lives in the backend itself, so every process sharing the backend sees it and
 * it works on any backend with atomic `increment`. For tag T:
 *   <keyPrefix>hoard:tag:T:n      a counter, never expires
 *   <keyPrefix>hoard:tag:T:<i>    the i-th entry key stored with T; lives as long as that entry
 *   <keyPrefix>hoard:tag:T:from   where the next invalidation starts: earlier slots are gone
 * Recording costs three small writes per tag on a miss (add the counter if absent, increment it,
 * set the slot); invalidation reads the slots since the last one and deletes the entries they name.
 */

function then<T, R>(value: MaybePromise<T>, next: (resolved: T) => MaybePromise<R>): MaybePromise<R> {
  return isThenable(value) ? Promise.resolve(value).then(next) : next(value as T);
}

function tagBase(tag: string): string {
  return `${moduleConfig().keyPrefix}hoard:tag:${tag}:`;
}

/** Records that `key` (stored for `ttl` seconds) carries `tag`; synchronous on a synchronous backend. */
export function recordTag(backend: CacheBackend, key: string, tag: string, ttl: number): MaybePromise<void> {
  const base = tagBase(tag);
  const counter = `${base}n`;
  return then(backend.add(counter, 0, 0), () =>
    then(backend.increment(counter), (slot) => backend.set(`${base}${slot}`, key, ttl)),
  );
}

/** Deletes every entry recorded under `tag` since the last invalidation; resolves to the keys that existed. */
export async function invalidateTag(backend: CacheBackend, tag: string): Promise<string[]> {
  const base = tagBase(tag);
  const [last, from = 1] = (await backend.getMany([`${base}n`, `${base}from`])) as (number | undefined)[];
  if (last === undefined || from > last) return [];
  const slots: string[] = [];
  for (let slot = from; slot <= last; slot++) slots.push(`${base}${slot}`);
  const keys = ((await backend.getMany(slots)) as unknown[]).filter((key): key is string => typeof key === 'string');
  const existed = await Promise.all(keys.map((key) => backend.delete(key)));
  await backend.deleteMany(slots);
  await backend.set(`${base}from`, last + 1, 0);
  return keys.filter((_, at) => existed[at]);
}
