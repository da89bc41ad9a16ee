import { CacheArgumentError } from '../errors.js';
import { processWide } from '../module/process-wide.js';
import { isAsyncFunction, type AnyFunction, type Callee, type CallSite } from '../runtime/call-site.js';
import { observableClassFromType } from '../runtime/observable.js';

/* The one adapter between both decorator flavours and the call path: a TC39 decorator is
 * called as (method, context), a legacy one as (prototype or class, name, descriptor). */

type Method = (this: any, ...args: any[]) => any;

/** A method decorator usable with standard (TC39) decorators and with `experimentalDecorators`. */
export interface HoardMethodDecorator {
  <T extends Method>(method: T, context: ClassMethodDecoratorContext<unknown, T>): T;
  <T extends Method>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T>;
}

/**
 * The call site behind each decorated method, so `CacheModule.invalidate(Class, 'method')` can
 * find it, also for a method decorated through the other build of hoard.
 */
const sites = processWide('sites', () => new WeakMap<Function, CallSite>());

export function callSiteOf(fn: unknown): CallSite | undefined {
  return typeof fn === 'function' ? sites.get(fn) : undefined;
}

interface ReflectMetadata {
  getOwnMetadataKeys?(target: object): unknown[];
  getOwnMetadata(key: unknown, target: object): unknown;
  defineMetadata(key: unknown, value: unknown, target: object): void;
}

/**
 * Gives `wrapper` what other decorators attached to `fn` — its own properties and its
 * reflect-metadata (Nest's `@Get`, `@UseGuards`, `@SetMetadata` store theirs on the function) —
 * so that `@Cached` above or below them behaves the same.
 */
function carryOver(fn: AnyFunction, wrapper: AnyFunction): void {
  for (const key of Reflect.ownKeys(fn)) {
    if (key === 'name' || key === 'length' || key === 'prototype') continue;
    Object.defineProperty(wrapper, key, Object.getOwnPropertyDescriptor(fn, key)!);
  }
  const metadata = Reflect as unknown as ReflectMetadata;
  for (const key of metadata.getOwnMetadataKeys?.(fn) ?? []) {
    metadata.defineMetadata(key, metadata.getOwnMetadata(key, fn), wrapper);
  }
}

/**
 * Wraps `fn` so every call goes through `site`; the wrapper keeps the method's name, arity and
 * what other decorators attached to it.
 */
export function wrap(site: CallSite): AnyFunction {
  const fn = site.callee.fn;
  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    return site.invoke(this, args);
  };
  Object.defineProperties(wrapper, {
    name: { value: fn.name },
    length: { value: fn.length },
  });
  carryOver(fn, wrapper);
  sites.set(wrapper, site);
  return wrapper;
}

/**
 * The class that declares `name` as `wrapper`, found from a receiver: a TC39 method decorator
 * is not told its class, and `this.constructor` would name a subclass.
 */
function declaringClassName(self: unknown, name: string, wrapper: Function): string {
  for (let owner = self; owner != null; owner = Object.getPrototypeOf(owner)) {
    if (Object.getOwnPropertyDescriptor(owner, name)?.value === wrapper) {
      return typeof owner === 'function' ? owner.name : (owner as { constructor: Function }).constructor.name;
    }
  }
  return (self as { constructor?: Function } | null | undefined)?.constructor?.name ?? 'anonymous';
}

function isDecoratorContext(value: unknown): value is DecoratorContext {
  return typeof value === 'object' && value !== null && 'kind' in value;
}

interface DesignMetadata {
  getMetadata?(key: string, target: object, property: string | symbol): unknown;
}

export function methodDecorator(
  decorator: string,
  makeSite: (callee: Callee, labelFrom: ((self: unknown) => string) | undefined) => CallSite,
): HoardMethodDecorator {
  function decorate(target: unknown, context: unknown, descriptor?: PropertyDescriptor): unknown {
    if (isDecoratorContext(context)) {
      if (context.kind !== 'method') {
        throw new CacheArgumentError(`${decorator} decorates methods, not the ${context.kind} ${String(context.name)}`);
      }
      const fn = target as AnyFunction;
      const name = String(context.name);
      // eslint-disable-next-line prefer-const -- the label closure below reads it; it is assigned once the site exists.
      let wrapper: AnyFunction;
      const site = makeSite(
        { fn, label: undefined, async: isAsyncFunction(fn) },
        (self) => `${declaringClassName(self, name, wrapper)}.${name}`,
      );
      wrapper = wrap(site);
      return wrapper;
    }
    const owner = typeof target === 'function' ? target : (target as object).constructor;
    const name = String(context);
    if (typeof descriptor?.value !== 'function') {
      throw new CacheArgumentError(`${decorator} decorates methods; ${owner.name}.${name} is not one`);
    }
    const fn = descriptor.value as AnyFunction;
    // With emitDecoratorMetadata, a method typed as returning a Promise counts as async, and one
    // typed as returning an Observable is known before its first call (which may be a hit).
    const returnType = (Reflect as DesignMetadata).getMetadata?.(
      'design:returntype',
      target as object,
      context as string | symbol,
    );
    const callee: Callee = {
      fn,
      label: `${owner.name}.${name}`,
      async: isAsyncFunction(fn) || returnType === Promise,
      observable: observableClassFromType(returnType),
    };
    return { ...descriptor, value: wrap(makeSite(callee, undefined)) };
  }
  return decorate as HoardMethodDecorator;
}
