/** What fakeCacheTime asks the library to fake: only `Date`, from `now` (ms since the epoch). */
export interface FakeTimerConfig {
  /** Milliseconds since the epoch the fake clock starts at. */
  now: number;
  /** Always `['Date']`. */
  toFake: 'Date'[];
}

/** The part of sinon (`sinon`) or `@sinonjs/fake-timers` (`FakeTimers.withGlobal(globalThis)`) that fakeCacheTime uses. */
export type FakeTimerLibrary =
  | {
      /** sinon's way in. */
      useFakeTimers(config: FakeTimerConfig): FakeClock;
    }
  | {
      /** @sinonjs/fake-timers' way in. */
      install(config: FakeTimerConfig): FakeClock;
    };

/** A fake clock as sinon and @sinonjs/fake-timers return it. */
export interface FakeClock {
  /** Moves the fake time on by `ms` milliseconds. */
  tick(ms: number): unknown;
  /** sinon's name for giving the real clock back. */
  restore?(): void;
  /** @sinonjs/fake-timers' name for giving the real clock back. */
  uninstall?(): void;
}

/** Cache time under test: see {@link fakeCacheTime}. */
export interface CacheTime {
  /** The library's clock, for anything else the test fakes with it. */
  readonly clock: FakeClock;
  /** Moves the time on by `seconds` (fractions allowed), hoard's unit for every ttl. */
  advance(seconds: number): void;
  /** Gives the real clock back; call it in `afterEach`. */
  restore(): void;
}

/**
 * Fakes the time that hoard's TTLs read, and nothing else: only `Date` is faked, so promises,
 * sockets, timeouts and background refreshes keep running for real, while `MemoryBackend` entries,
 * `staleTtl` and `earlyRefresh` see the fake time. The library is passed in, never looked up.
 *
 * ```ts
 * import sinon from 'sinon';
 * const time = fakeCacheTime(sinon);
 * afterEach(() => time.restore());
 * // … a value cached with { ttl: 300 } …
 * time.advance(300); // it has expired
 * ```
 *
 * It does not move a Redis or memcached server's clock: test TTL logic on a `MemoryBackend`.
 */
export function fakeCacheTime(library: FakeTimerLibrary, options: { now?: number } = {}): CacheTime {
  const config: FakeTimerConfig = { now: options.now ?? Date.now(), toFake: ['Date'] };
  const clock = 'useFakeTimers' in library ? library.useFakeTimers(config) : library.install(config);
  return {
    clock,
    advance(seconds: number): void {
      clock.tick(seconds * 1000);
    },
    restore(): void {
      if (clock.restore !== undefined) clock.restore();
      else clock.uninstall?.();
    },
  };
}
