/** Attribute names on hoard's spans and metrics (docs/observability.md has the tables). */
export const ATTR = {
  /** `Class.method`, or the `name` given to `cached(fn)`. */
  method: 'hoard.method',
  /** The registered backend name (`default` for the default one). */
  backend: 'hoard.backend',
  /** How a call was answered: see {@link CallResult}. */
  result: 'hoard.result',
  /** `l1` or `l2`: which tier of a tiered backend answered a hit. */
  tier: 'hoard.tier',
  /** The hoard key, only through the `keys` sanitizer and never on metrics. */
  key: 'hoard.key',
  /** `stale` or `early`, on `hoard.refreshes`. */
  refreshKind: 'hoard.refresh.kind',
  /** `sent` or `received`, on `hoard.bus.messages`. */
  direction: 'hoard.bus.direction',
  /** `redis` or `memcached`, on operation spans and metrics (OpenTelemetry's database conventions). */
  dbSystem: 'db.system.name',
  /** hoard's operation (`get`, `set`, …), on operation spans and metrics. */
  dbOperation: 'db.operation.name',
  /** The server an operation went to. */
  serverAddress: 'server.address',
  /** The port of that server. */
  serverPort: 'server.port',
  /** What failed: the error's `code`, else its class name. */
  errorType: 'error.type',
} as const;

/**
 * How a cached call was answered. `join`: it shared a lookup or computation already under way
 * (single flight). `lock_wait`: it found the distributed lock taken and waited for the holder.
 * `fail_open`: the backend failed and the method ran. `early_refresh`: a fresh hit that also
 * started a refresh (XFetch's draw).
 */
export type CallResult = 'hit' | 'miss' | 'stale' | 'early_refresh' | 'lock_wait' | 'fail_open' | 'join';

/** `error.code` when the error has a string one (hoard's and Node's errors), else its class name. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : '_OTHER';
}
