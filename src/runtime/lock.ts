import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheBackend } from '../backends/backend.js';
import { lockKey as lockKeyOf } from '../module/keyspace.js';
import { lockChannel } from '../channels.js';

/** Defaults of `lockTimeout` and `lockTtl`, in seconds. */
export const DEFAULT_LOCK_TIMEOUT = 5;
export const DEFAULT_LOCK_TTL = 10;

/** Waiters poll for the holder's value with backoff from the first to the last delay (ms). */
const FIRST_POLL_MS = 10;
const LAST_POLL_MS = 200;

export interface LockedComputation<T> {
  backend: CacheBackend;
  key: string;
  lockTimeout: number;
  lockTtl: number;
  /** Computes and stores the value: run by the holder, or by a waiter that gave up. */
  compute(): Promise<T>;
  /** Reads the value another process stored; undefined while there is none. */
  poll(): Promise<{ value: T } | undefined>;
  /** A lock fault: the computation goes ahead without the lock (fail-open). */
  report(operation: string, error: unknown): void;
}

/**
 * Distributed single flight: one process takes the lock entry (`add` = SET NX PX / `ms` mode E)
 * with a random token and computes; the others poll for its value until `lockTimeout`, retrying
 * the lock on the way so that a holder that died (its lock expired after `lockTtl`) is replaced.
 * Release deletes the lock only if it still holds our token.
 */
export async function computeUnderLock<T>(job: LockedComputation<T>): Promise<T> {
  const { backend } = job;
  const lockKey = lockKeyOf(job.key);
  const token = randomBytes(12).toString('base64url');
  const deadline = Date.now() + job.lockTimeout * 1000;
  for (let delay = FIRST_POLL_MS; ; delay = Math.min(delay * 2, LAST_POLL_MS)) {
    let acquired: boolean;
    try {
      acquired = await backend.add(lockKey, token, job.lockTtl);
    } catch (error) {
      job.report('lock', error);
      break;
    }
    if (acquired) {
      try {
        return await job.compute();
      } finally {
        release(backend, lockKey, token).catch((error: unknown) => job.report('unlock', error));
      }
    }
    if (delay === FIRST_POLL_MS && lockChannel.hasSubscribers) lockChannel.publish({ key: job.key, state: 'wait' });
    const left = deadline - Date.now();
    if (left <= 0) {
      if (lockChannel.hasSubscribers) lockChannel.publish({ key: job.key, state: 'timeout' });
      break;
    }
    await sleep(Math.min(delay, left));
    let found: { value: T } | undefined;
    try {
      found = await job.poll();
    } catch (error) {
      job.report('get', error);
      break;
    }
    if (found) return found.value;
  }
  return job.compute();
}

/**
 * A background refresh under the lock, without waiting: when another process holds it, that
 * process is refreshing already, and this one keeps serving what it has.
 */
export async function refreshUnderLock(
  backend: CacheBackend,
  key: string,
  lockTtl: number,
  refresh: () => Promise<void>,
): Promise<void> {
  const lockKey = lockKeyOf(key);
  const token = randomBytes(12).toString('base64url');
  if (!(await backend.add(lockKey, token, lockTtl))) return;
  try {
    await refresh();
  } finally {
    await release(backend, lockKey, token);
  }
}

async function release(backend: CacheBackend, lockKey: string, token: string): Promise<void> {
  if (backend.deleteIfEquals) {
    await backend.deleteIfEquals(lockKey, token);
    return;
  }
  // Without an atomic compare-and-delete a lock that expired and was retaken between these two
  // calls could be deleted; it only lets one more process compute, never a wrong value.
  if ((await backend.get(lockKey)) === token) await backend.delete(lockKey);
}
