/**
 * A value shared by every copy of hoard in this process, created by the first copy that asks.
 * An application that imports hoard while a CommonJS dependency (or Jest) requires it loads
 * both of its builds: each is a separate set of modules, so anything they must agree on lives
 * on `globalThis` under `Symbol.for('hoard.<name>')` rather than in a module variable.
 */
export function processWide<T>(name: string, create: () => T): T {
  return ((globalThis as Record<symbol, T | undefined>)[Symbol.for(`hoard.${name}`)] ??= create());
}
