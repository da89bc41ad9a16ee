/** What the soak orchestrator and its workers tell each other over IPC. */

export interface WorkerConfig {
  id: number;
  redisUrl: string;
  memcached: string[];
  /** Registered backend names the workload runs on. */
  backends: string[];
  /** Each backend's `timeout`, in ms. */
  timeoutMs: number;
  /** A decorated call taking longer than this (ms) counts as over the bound. */
  latencyBoundMs: number;
  /** Concurrent call loops in the worker. */
  concurrency: number;
  /** How long (ms) the recovery check waits for a backend to serve hits again. */
  recoveryLimitMs: number;
}

/** `run`: start calling; `mark`: take the starting memory reading; `stop`: finish and report. */
export type ToWorker = { type: 'run' } | { type: 'mark' } | { type: 'stop' };

export type FromWorker = { type: 'ready' } | { type: 'report'; report: WorkerReport };

export interface WorkerReport {
  id: number;
  /** Decorated calls made, each value checked. */
  calls: number;
  /** Values that differed from what their arguments give: must be 0. */
  wrong: number;
  /** Decorated calls that rejected (they fail open, so: must be 0). */
  callerErrors: number;
  /** `error` events: faults hoard shielded the callers from. */
  errorsReported: number;
  /** CacheModule.invalidate / invalidateTags calls; they do not fail open. */
  directCalls: number;
  directFailures: number;
  /** Unhandled rejections and uncaught exceptions: must be 0. */
  unhandled: number;
  maxLatencyMs: number;
  slowestCall: string;
  /** Decorated calls slower than `latencyBoundMs`, and the first few of them described. */
  overBound: number;
  overBoundCalls: string[];
  /** The longest the event loop was held up (ms) between the warm-up and the stop. */
  maxLoopDelayMs: number;
  /** MB after a full GC, after the warm-up and at the end. */
  rssStart: number;
  rssEnd: number;
  heapStart: number;
  heapEnd: number;
  /** Lookups of decorated calls, by backend, until the stop (the recovery check not included). */
  hits: Record<string, number>;
  misses: Record<string, number>;
  /** By backend: ms from the end of the last outage until a fresh key was stored and hit; -1 = never. */
  recoveryMs: Record<string, number>;
  /** The first few failures, described. */
  samples: string[];
}
