import { Inject, type DynamicModule, type Provider } from '@nestjs/common';
import type { CacheBackend } from '../backends/backend.js';
import { CacheArgumentError } from '../errors.js';
import type { HoardModuleAsyncOptions, HoardModuleOptions, HoardModuleRootOptions, HoardOptionsFactory } from './options.js';
import { backendsOf, HoardRegistrations } from './registrations.js';
import { getCacheBackendToken, HOARD_MODULE_OPTIONS, HOARD_REGISTRATIONS, requestedNames } from './tokens.js';

/**
 * Injects the backend registered as `name` (`'default'` when omitted): a property or
 * constructor parameter decorator. In tests, `overrideProvider(getCacheBackendToken(name))`
 * replaces the backend that gets registered.
 */
export function InjectCacheBackend(name?: string): PropertyDecorator & ParameterDecorator {
  if (name !== undefined) requestedNames.add(name);
  return Inject(getCacheBackendToken(name));
}

/**
 * The providers of one HoardModule: one per backend name (its value is what gets registered,
 * so overriding it in a test replaces the backend), and the registrations made from them.
 */
function providersFor(names: Iterable<string>): Provider[] {
  const tokens = [...new Set([...names, ...requestedNames])];
  const backendProviders: Provider[] = tokens.map((name) => ({
    provide: getCacheBackendToken(name),
    useFactory: (options: HoardModuleOptions) => backendsOf(options).get(name),
    inject: [HOARD_MODULE_OPTIONS],
  }));
  const registrations: Provider = {
    provide: HOARD_REGISTRATIONS,
    useFactory: (options: HoardModuleOptions, ...provided: (CacheBackend | undefined)[]) => {
      const given = backendsOf(options);
      const backends = new Map(given);
      tokens.forEach((name, i) => {
        const backend = provided[i];
        if (backend === undefined) backends.delete(name);
        else backends.set(name, backend);
      });
      return new HoardRegistrations(options, backends, new Set([...given.values(), ...backends.values()]));
    },
    inject: [HOARD_MODULE_OPTIONS, ...tokens.map((name) => getCacheBackendToken(name))],
  };
  return [...backendProviders, registrations];
}

const exportsOf = (providers: Provider[]) => providers.map((provider) => (provider as { provide: string }).provide);

/**
 * hoard for NestJS: registers backends when the module's providers are created (before any
 * `onModuleInit`), injects them with `@InjectCacheBackend(name?)`, logs `error` events with
 * Nest's `Logger`, and on application shutdown unregisters the names still its own and closes
 * the backends it was given. Global unless `isGlobal: false`.
 *
 * Named HoardModule, not CacheModule, so that it never collides with `@nestjs/cache-manager`.
 */
export class HoardModule {
  /** Registers `options.backends` and applies the `configure()` options in them. */
  static forRoot(options: HoardModuleRootOptions): DynamicModule {
    const { isGlobal = true, ...moduleOptions } = options;
    const providers = providersFor(backendsOf(moduleOptions).keys());
    return {
      module: HoardModule,
      global: isGlobal,
      providers: [{ provide: HOARD_MODULE_OPTIONS, useValue: moduleOptions }, ...providers],
      exports: [HOARD_MODULE_OPTIONS, ...exportsOf(providers)],
    };
  }

  /**
   * The options come from a factory (`useFactory` with `inject`, e.g. `ConfigService`), a class
   * (`useClass`) or an existing provider (`useExisting`), from `imports`.
   */
  static forRootAsync(options: HoardModuleAsyncOptions): DynamicModule {
    const { useFactory, useClass, useExisting, inject = [], imports = [], isGlobal = true } = options;
    if ([useFactory, useClass, useExisting].filter((use) => use !== undefined).length !== 1) {
      throw new CacheArgumentError('hoard: HoardModule.forRootAsync needs exactly one of useFactory, useClass or useExisting');
    }
    const make = (factory: HoardOptionsFactory) => factory.createHoardOptions();
    const optionsProviders: Provider[] = useFactory
      ? [{ provide: HOARD_MODULE_OPTIONS, useFactory, inject }]
      : [
          { provide: HOARD_MODULE_OPTIONS, useFactory: make, inject: [(useClass ?? useExisting)!] },
          ...(useClass ? [{ provide: useClass, useClass }] : []),
        ];
    const providers = providersFor([]);
    return {
      module: HoardModule,
      global: isGlobal,
      imports,
      providers: [...optionsProviders, ...providers],
      exports: [HOARD_MODULE_OPTIONS, ...exportsOf(providers)],
    };
  }
}
