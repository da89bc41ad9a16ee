import { Cached, CacheModule, cached, type CacheBackend } from 'hoard';
import type { Computation, Lookup, Options, Value } from '../workload.js';

/** Seconds every subject keeps entries: far longer than a run, so nothing expires while measured. */
export const TTL_SECONDS = 300;

/**
 * Seconds a remote operation of hoard's may take before hoard fails open and computes: the
 * default (0.5 s) was overrun on this shared machine under load, with 256 calls in flight, and a
 * call that fails open is no hit. The peers have no such deadline at all.
 */
export const REMOTE_TIMEOUT = 5;

let registrations = 0;

/** Registers `backend` under a name of its own, so subjects never share entries. */
export function registerBackend(backend: CacheBackend): string {
  const name = `bench-${++registrations}`;
  CacheModule.register(name, backend);
  return name;
}

/**
 * The workload as a user writes it: an async method decorated with `@Cached` (with `key`, if
 * given; a `namespace` keeps the keys of methods made by this function apart).
 */
export function cachedMethod(
  backend: string,
  computation: Computation,
  key?: (id: number, opts: Options) => string,
  namespace?: string,
): Lookup {
  class Reports {
    @Cached({ backend, ttl: TTL_SECONDS, key, namespace })
    async lookup(id: number, opts: Options): Promise<Value> {
      return computation.result(id, opts);
    }
  }
  const reports = new Reports();
  return (id, opts) => reports.lookup(id, opts);
}

/** The workload memoized as a plain function with `cached(fn)`. */
export function cachedFunction(backend: string, computation: Computation): Lookup {
  return cached(computation.run, { name: 'lookup', backend, ttl: TTL_SECONDS });
}
