import { refreshChannel } from '../channels.js';
import type { Registration } from '../module/state.js';
import { refreshUnderLock } from './lock.js';

/** A background refresh of one entry. */
export interface Refresh {
  readonly registration: Registration;
  readonly key: string;
  readonly method: string;
  readonly kind: 'stale' | 'early';
  /** The lock's ttl when refreshes take the distributed lock; undefined when they do not. */
  readonly lockTtl: number | undefined;
  /** Computes the value and stores it. */
  run(): Promise<unknown>;
  /** A refresh that failed: reported, never thrown. */
  report(error: unknown): void;
}

/**
 * Starts `refresh` unless one of that key runs already in this process. Fail-safe: a refresh
 * that throws leaves the current value in place. With the lock, only the process that takes it
 * refreshes; the others keep serving meanwhile.
 */
export function refreshInBackground(refresh: Refresh): void {
  const { registration, key, lockTtl } = refresh;
  const refreshing = registration.refreshing;
  if (refreshing.has(key)) return;
  refreshing.add(key);
  if (refreshChannel.hasSubscribers)
    refreshChannel.publish({ method: refresh.method, backend: registration.name, key, kind: refresh.kind });
  const run = async (): Promise<void> => {
    await refresh.run();
  };
  const done = (): void => {
    refreshing.delete(key);
  };
  Promise.resolve()
    .then(() => (lockTtl === undefined ? run() : refreshUnderLock(registration.backend, key, lockTtl, run)))
    .then(done, (error: unknown) => {
      done();
      refresh.report(error);
    });
}
