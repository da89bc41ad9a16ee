import type { InjectionToken, LoggerService, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';
import type { CacheBackend } from '../backends/backend.js';
import type { CacheModuleOptions } from '../module/config.js';

/** What `HoardModule.forRoot` (or the factory of `forRootAsync`) is given. */
export interface HoardModuleOptions extends CacheModuleOptions {
  /**
   * One backend (registered as the default), or a record of name → backend (`default` is the
   * default one). The module owns them: it closes them on application shutdown (clients passed
   * to a backend ready-made stay open).
   */
  backends: CacheBackend | Readonly<Record<string, CacheBackend>>;
  /**
   * Where `error` events go (a backend fault, a failed refresh): a `LoggerService`, or `false`
   * for nowhere. Default: Nest's `Logger` with the context `hoard`. Keys are left out of the
   * log line, since they can hold user data.
   */
  logger?: LoggerService | false;
}

/** Options of `HoardModule.forRoot`: the module's options plus where it is visible. */
export interface HoardModuleRootOptions extends HoardModuleOptions {
  /** Whether every module sees the backend tokens without importing `HoardModule`. Default true. */
  isGlobal?: boolean;
}

/** A class that makes the options, for `forRootAsync({ useClass | useExisting })`. */
export interface HoardOptionsFactory {
  /** The module's options; may be async (read a secret, wait for configuration). */
  createHoardOptions(): HoardModuleOptions | Promise<HoardModuleOptions>;
}

/** `HoardModule.forRootAsync`: options made by a factory, a class or an existing provider. */
export interface HoardModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Whether every module sees the backend tokens without importing `HoardModule`. Default true. */
  isGlobal?: boolean;
  /** Makes the options from the providers listed in `inject` (e.g. `ConfigService`). No default: give exactly one of `useFactory`, `useClass`, `useExisting`. */
  useFactory?: (...args: any[]) => HoardModuleOptions | Promise<HoardModuleOptions>;
  /** The providers `useFactory` is called with, in order. Default none. */
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** A class the module instantiates to make the options. No default (see `useFactory`). */
  useClass?: Type<HoardOptionsFactory>;
  /** A provider, from `imports`, that makes the options. No default (see `useFactory`). */
  useExisting?: Type<HoardOptionsFactory>;
}
