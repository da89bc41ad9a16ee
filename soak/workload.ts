/**
 * What the soak's workers call: decorated methods whose results are pure functions of their
 * arguments, so that every value a call returns — computed, read from a cache, served stale,
 * written by @CachePut in another process — can be checked against what the arguments must
 * give. A value that differs is a wrong value: a key collision, a reply matched to the wrong
 * request, a corrupted payload.
 */
import { Cached, CacheEvict, CachePut } from 'hoard';

/** Milliseconds each method "computes" (an async pause, as a query would be). */
export const COMPUTE_MS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The expected results, by method: each builds a fresh value from the arguments alone. */
export const expected = {
  // Dates, BigInts and nested objects go through the serializer's tagged form.
  square: (n: number) => ({ n, square: n * n, cube: BigInt(n) ** 3n, at: new Date(n * 1000) }),
  // Maps, Sets and bytes; the object argument is keyed regardless of its property order.
  profile: (id: string, options: { locale: string; fields: string[] }) => ({
    id,
    locale: options.locale,
    fields: new Set(options.fields),
    names: new Map([[id, `${id}@${options.locale}`]]),
    bytes: Buffer.from(`${id}/${options.locale}`),
  }),
  // A bare integer: memcached stores it as a counter, not through the serializer.
  length: (text: string) => text.length * 7 - 3,
  // null and undefined are cached like any other value.
  maybe: (n: number) => (n % 3 === 0 ? undefined : n % 3 === 1 ? null : `${n}`),
  stale: (n: number) => ({ stale: n, text: 'x'.repeat(n % 50) }),
  tagged: (n: number) => [n, n + 1, n + 2],
  early: (n: number) => ({ early: n }),
  written: (n: number) => ({ written: n, half: n / 2 }),
} as const;

/** Keys with characters protocols treat specially, so they travel through every encoding. */
export const awkwardStrings = [
  'plain',
  'with space',
  'line\r\nbreak',
  'tab\tnul\0',
  'naïve ✓ 𝄞',
  'a,b',
  'x:y',
  '"quoted"',
  'get k\r\n',
];

export const tagOf = (n: number) => `group:${n % 5}`;
const writtenKey = (n: number) => `written:${n}`;

/** The workload's decorated methods, on the backend registered under `backend`. */
export function workloadOn(backend: string) {
  const namespace = backend; // keeps the two backends' entries and stats apart
  class Workload {
    @Cached({ backend, namespace, ttl: 2 })
    async square(n: number) {
      await sleep(COMPUTE_MS);
      return expected.square(n);
    }

    @Cached({ backend, namespace, ttl: 3 })
    async profile(id: string, options: { locale: string; fields: string[] }) {
      await sleep(COMPUTE_MS);
      return expected.profile(id, options);
    }

    @Cached({ backend, namespace, ttl: 1 })
    async length(text: string) {
      await sleep(COMPUTE_MS);
      return expected.length(text);
    }

    @Cached({ backend, namespace, ttl: 2 })
    async maybe(n: number) {
      await sleep(COMPUTE_MS);
      return expected.maybe(n);
    }

    @Cached({ backend, namespace, ttl: 0.5, staleTtl: 2 })
    async stale(n: number) {
      await sleep(COMPUTE_MS);
      return expected.stale(n);
    }

    @Cached({ backend, namespace, ttl: 5, tags: (n: number) => [tagOf(n)] })
    async tagged(n: number) {
      await sleep(COMPUTE_MS);
      return expected.tagged(n);
    }

    @Cached({ backend, namespace, ttl: 1, earlyRefresh: true, jitter: 0.2 })
    async early(n: number) {
      await sleep(COMPUTE_MS);
      return expected.early(n);
    }

    // Reader and writers of one entry: whatever order they run in, across processes, the
    // entry can only hold the value of its arguments.
    @Cached({ backend, namespace, ttl: 3, key: writtenKey })
    async written(n: number) {
      await sleep(COMPUTE_MS);
      return expected.written(n);
    }

    @CachePut({ backend, namespace, ttl: 3, key: writtenKey })
    async write(n: number) {
      await sleep(COMPUTE_MS);
      return expected.written(n);
    }

    @CacheEvict({ backend, namespace, key: writtenKey })
    async remove(_n: number) {
      await sleep(COMPUTE_MS);
    }

    /** For the recovery check: a key nobody else uses, so the second call shows a working cache. */
    @Cached({ backend, namespace, ttl: 30 })
    async probe(token: string) {
      return token;
    }
  }
  return Workload;
}

export type Workload = InstanceType<ReturnType<typeof workloadOn>>;
