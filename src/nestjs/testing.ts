import type { DynamicModule } from '@nestjs/common';
import type { CacheBackend } from '../backends/backend.js';
import { MemoryBackend } from '../backends/memory.js';
import { NullBackend } from '../backends/null.js';
import type { CacheModuleOptions } from '../module/config.js';
import { DEFAULT_BACKEND } from '../module/state.js';
import { RecordingBackend } from '../testing/recording-backend.js';
import { HoardModule } from './hoard.module.js';

/** What a test module caches with: a fresh backend of that kind, or the one given. */
export type TestingBackend = 'memory' | 'null' | 'recording' | CacheBackend;

/** Options of `HoardTestingModule.forRoot`: the backend, the names it is registered as, and `configure()` options. */
export interface HoardTestingOptions extends CacheModuleOptions {
  /** Default `'memory'`; `'recording'` is a `RecordingBackend` over a `MemoryBackend`. */
  backend?: TestingBackend;
  /** Backend names besides `'default'` that the code under test uses (`@Cached({ backend })`). Default none. */
  names?: string[];
}

function backendFor(kind: TestingBackend): CacheBackend {
  if (kind === 'memory') return new MemoryBackend();
  if (kind === 'null') return new NullBackend();
  if (kind === 'recording') return new RecordingBackend(new MemoryBackend());
  return kind;
}

/**
 * A HoardModule for `Test.createTestingModule`: one backend registered as the default and as
 * every name in `names`, no error log. Get it with `moduleRef.get(getCacheBackendToken())`.
 *
 * ```ts
 * const moduleRef = await Test.createTestingModule({
 *   imports: [HoardTestingModule.forRoot({ backend: 'recording' }), OrdersModule],
 * }).compile();
 * ```
 */
export class HoardTestingModule {
  /** A global HoardModule with one backend of `options.backend` under the default and every name in `options.names`. */
  static forRoot(options: HoardTestingOptions = {}): DynamicModule {
    const { backend = 'memory', names = [], ...configuration } = options;
    const chosen = backendFor(backend);
    const backends = Object.fromEntries([DEFAULT_BACKEND, ...names].map((name) => [name, chosen]));
    return HoardModule.forRoot({ ...configuration, backends, logger: false });
  }
}
