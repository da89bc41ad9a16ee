import { Logger, type LoggerService, type OnApplicationShutdown } from '@nestjs/common';
import type { CacheBackend } from '../backends/backend.js';
import { CacheArgumentError } from '../errors.js';
import { CacheModule } from '../cache-module.js';
import type { CacheEvent } from '../module/events.js';
import { DEFAULT_BACKEND } from '../module/state.js';
import type { HoardModuleOptions } from './options.js';

/** `backends` as name → backend pairs: a lone backend is the default one. */
export function backendsOf(options: HoardModuleOptions): Map<string, CacheBackend> {
  const backends = (options as Partial<HoardModuleOptions> | undefined)?.backends;
  if (backends === null || typeof backends !== 'object') {
    throw new CacheArgumentError(
      "hoard: HoardModule.forRoot options (or what forRootAsync's factory returns) need `backends`: one backend, or a record of name → backend",
    );
  }
  const single = typeof (backends as Partial<CacheBackend>).lookup === 'function';
  return new Map<string, CacheBackend>(single ? [[DEFAULT_BACKEND, backends as CacheBackend]] : Object.entries(backends));
}

/**
 * What one HoardModule registered in the process-wide CacheModule. Made while Nest creates the
 * module's providers, so every backend is registered before any `onModuleInit` runs; undone on
 * application shutdown, when Nest calls this provider's hook.
 */
export class HoardRegistrations implements OnApplicationShutdown {
  private readonly registered = new Map<string, CacheBackend>();
  private readonly logError: ((event: CacheEvent) => void) | undefined;

  constructor(
    options: HoardModuleOptions,
    /** The backend each name resolves to, overrides of the backend tokens included. */
    backends: Map<string, CacheBackend>,
    /** Every backend this module was given, registered or overridden: all of them are its to close. */
    private readonly owned: Set<CacheBackend>,
  ) {
    const { backends: _backends, logger, ...configuration } = options;
    CacheModule.configure(configuration);
    for (const [name, backend] of backends) {
      CacheModule.register(name, backend);
      this.registered.set(name, backend);
    }
    if (logger !== false) {
      const sink: LoggerService = logger ?? new Logger('hoard');
      this.logError = (event) => {
        const { error } = event;
        const where = `${event.operation ?? 'operation'} on backend '${event.backend}'${event.method ? ` for ${event.method}` : ''}`;
        sink.error(
          `${where} failed: ${error instanceof Error ? error.message : String(error)}`,
          error instanceof Error ? error.stack : undefined,
        );
      };
      CacheModule.on('error', this.logError);
    }
  }

  /** The backend this module registered as `name`. */
  backend(name: string): CacheBackend | undefined {
    return this.registered.get(name);
  }

  /**
   * Unregisters the names still mapped to this module's backends (another application may have
   * registered the same name since), then closes every backend this module was given. Runs at
   * application shutdown, after `onModuleDestroy`, so other providers' shutdown work still
   * finds the cache.
   */
  async onApplicationShutdown(): Promise<void> {
    if (this.logError) CacheModule.off('error', this.logError);
    for (const [name, backend] of this.registered) CacheModule.unregister(name, backend);
    this.registered.clear();
    const closing = [...this.owned].map(async (backend) => backend.close());
    this.owned.clear();
    const failures = (await Promise.allSettled(closing)).filter((result) => result.status === 'rejected');
    for (const failure of failures) new Logger('hoard').error(`closing a backend failed: ${String(failure.reason)}`);
  }
}
