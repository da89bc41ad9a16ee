import type { Computation, Lookup, Value } from '../workload.js';

/** `floor`: the hand-written baseline ratios are taken against; `hoard`: ours; `peer`: another library. */
export type Role = 'floor' | 'hoard' | 'peer';

/** One library (or the floor) set up to cache the workload's method. */
export interface Subject {
  readonly name: string;
  readonly role: Role;
  readonly computation: Computation;
  readonly lookup: Lookup;
  /** Releases connections; a no-op for in-process caches. */
  close(): Promise<void>;
}

/**
 * How to build a subject for one scenario: every scenario builds its own, with its own
 * computation (counting runs, with or without delay), so nothing is shared between scenarios.
 */
export interface SubjectFactory<Server = void> {
  readonly name: string;
  readonly role: Role;
  create(computation: Computation, server: Server): Promise<Omit<Subject, 'name' | 'role' | 'computation'>>;
}

export async function build<Server>(factory: SubjectFactory<Server>, computation: Computation, server: Server): Promise<Subject> {
  const built = await factory.create(computation, server);
  return { name: factory.name, role: factory.role, computation, lookup: built.lookup, close: built.close };
}

export const nothingToClose = async (): Promise<void> => {};

/** The key every hand-written or key-taking subject derives from the arguments. */
export function jsonKey(id: number, opts: object): string {
  return JSON.stringify([id, opts]);
}

/**
 * The memoization people write by hand over a Map-like store: look up `JSON.stringify([id, opts])`;
 * on a miss compute, store and return. The memory floor is this over a Map.
 */
export function memoizeOver(
  store: { get(key: string): Value | undefined; set(key: string, value: Value): unknown },
  computation: Computation,
): Lookup {
  return async (id, opts) => {
    const key = jsonKey(id, opts);
    const hit = store.get(key);
    if (hit !== undefined) return hit;
    const value = await computation.run(id, opts);
    store.set(key, value);
    return value;
  };
}

/** The same over a server: `read` answers the stored JSON text (null on a miss), `write` stores it. */
export function memoizeRemote(
  read: (key: string) => Promise<string | Buffer | null>,
  write: (key: string, text: string) => Promise<unknown>,
  computation: Computation,
  prefix = '',
): Lookup {
  return async (id, opts) => {
    const key = prefix + jsonKey(id, opts);
    const stored = await read(key);
    if (stored !== null) return JSON.parse(stored.toString()) as Value;
    const value = await computation.run(id, opts);
    await write(key, JSON.stringify(value));
    return value;
  };
}
