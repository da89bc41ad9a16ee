/**
 * Keys of argument lists seen recently, found again without encoding them. Building a key
 * string costs most of a memory hit: the concatenation, flattening it, and hashing the new
 * string in the backend's Map. Here an argument list is walked as a path of parts through a
 * trie whose nodes hold the finished key, whose hash V8 has already computed:
 *
 *   primitives by value (Map equality: 0 and -0 meet, as they do in `encodeArguments`),
 *   OPEN_ARRAY item… CLOSE, OPEN_OBJECT (key value)… CLOSE for plain objects, keys sorted
 *   and undefined values left out.
 *
 * The path can be read back one way only (a marker is never a value, a key is always
 * followed by its value), so one path is one argument list up to what `encodeArguments`
 * ignores, and a node's key is the one encoding would give. Anything else — class
 * instances, Dates, Maps, objects with symbol keys, deep or long structures — is not kept
 * here and is always encoded. A plain object's properties are read again by the encoder
 * when its path is unknown: an argument whose getters answer differently on each read has
 * no well-defined key anyway.
 */

/** Keys kept per call site before its trie starts over, so one method cannot take the whole budget. */
const DEFAULT_MAX_KEYS = 4096;
/** Parts of one argument list, and the nesting depth, past which it is encoded every time. */
const MAX_PARTS = 32;
const MAX_DEPTH = 4;
/** Longer strings are encoded every time, so the trie does not keep a second copy of them. */
const MAX_STRING = 256;

/** The process-wide default of {@link setLearntKeysBytes}: 4 MiB. */
export const DEFAULT_LEARNT_KEYS_BYTES = 4 * 1024 * 1024;

/*
 * What a trie is charged, in bytes of V8 heap (64-bit, no pointer compression): a node is an
 * object of four fields; a branching Map costs its table, then about a table row per part
 * (rows double, so up to two); a string (a learnt key, or an argument kept as a part) its
 * header and one byte a character. The bench's heap scenario checks the estimate.
 */
const NODE_BYTES = 56;
const MAP_BYTES = 200;
const MAP_ENTRY_BYTES = 56;
const STRING_BYTES = 24;

const NO_PART = Symbol('no part');
const OPEN_ARRAY = Symbol('[');
const OPEN_OBJECT = Symbol('{');
const CLOSE = Symbol(']');

/**
 * The bytes every call site's learnt keys share, process-wide: on the global symbol registry, so
 * two copies of the package loaded in one process share one budget. `holders` are the tries that
 * hold anything, so the largest can be found and forgotten when the budget is full. They are held
 * weakly: a call site that is gone (a `cached(fn)` made per request, a class a test dropped) must
 * not keep its bytes charged, or live sites would be forgotten to pay for it.
 */
interface Budget {
  limit: number;
  used: number;
  readonly holders: Set<WeakRef<KnownKeys>>;
  readonly released: FinalizationRegistry<Account>;
}

/** What one trie is charged, kept apart from the trie so that it can be settled once the trie is collected. */
interface Account {
  bytes: number;
  readonly ref: WeakRef<KnownKeys>;
}

const BUDGET = Symbol.for('hoard.learntKeys');
const pool: Budget = ((globalThis as { [BUDGET]?: Budget })[BUDGET] ??= {
  limit: DEFAULT_LEARNT_KEYS_BYTES,
  used: 0,
  holders: new Set(),
  released: new FinalizationRegistry((account: Account) => {
    pool.used -= account.bytes;
    pool.holders.delete(account.ref);
  }),
});

/** Sets the process-wide bound on learnt keys (`CacheModule.configure({ learntKeysBytes })`); 0 = none learnt. */
export function setLearntKeysBytes(bytes: number): void {
  pool.limit = bytes;
  fitBudget();
}

/** Estimated bytes the learnt keys of every call site hold now. */
export function learntKeysBytes(): number {
  return pool.used;
}

/** Forgets the largest tries until the learnt keys fit the budget again. */
function fitBudget(): void {
  while (pool.used > pool.limit) {
    let largest: KnownKeys | undefined;
    for (const ref of pool.holders) {
      const holder = ref.deref();
      if (holder !== undefined && (largest === undefined || holder.bytes > largest.bytes)) largest = holder;
    }
    largest!.forget();
  }
}

/** Most nodes have one child, kept inline; a Map only appears where paths branch. */
class Node {
  part: unknown = NO_PART;
  child: Node | undefined = undefined;
  others: Map<unknown, Node> | undefined = undefined;
  key: string | undefined = undefined;
}

export class KnownKeys {
  private readonly account: Account = { bytes: 0, ref: new WeakRef(this) };

  constructor(private readonly maxKeys = DEFAULT_MAX_KEYS) {
    pool.released.register(this, this.account);
  }

  private root = new Node();
  private size = 0;

  /** What this trie is charged against the process-wide budget. */
  get bytes(): number {
    return this.account.bytes;
  }
  /** Parts the current walk may still take. */
  private partsLeft = 0;
  /** Bytes the current walk has added. */
  private added = 0;

  /** The key learnt for `args`, if any. */
  find(args: ArrayLike<unknown>): string | undefined {
    return this.walk(args, false)?.key;
  }

  /** Remembers `key` as the encoding of `args`; a no-op for arguments the trie does not take. */
  learn(args: ArrayLike<unknown>, key: string): void {
    if (pool.limit === 0) return;
    if (this.size >= this.maxKeys) this.forget();
    this.added = 0;
    const node = this.walk(args, true);
    if (node !== undefined && node.key === undefined) {
      node.key = key;
      this.size++;
      this.added += STRING_BYTES + key.length;
    }
    if (this.added === 0) return;
    this.account.bytes += this.added;
    pool.used += this.added;
    pool.holders.add(this.account.ref);
    if (pool.used > pool.limit) fitBudget();
  }

  /** Drops every key: they were built on a key prefix that has changed, or the budget is full. */
  forget(): void {
    this.root = new Node();
    this.size = 0;
    pool.used -= this.account.bytes;
    this.account.bytes = 0;
    pool.holders.delete(this.account.ref);
  }

  private walk(args: ArrayLike<unknown>, grow: boolean): Node | undefined {
    this.partsLeft = MAX_PARTS;
    let node: Node | undefined = this.root;
    for (let i = 0; node !== undefined && i < args.length; i++) node = this.descend(node, args[i], 0, grow);
    return node;
  }

  /** The node after `value`'s parts; undefined where the path is unknown (or not taken). */
  private descend(node: Node, value: unknown, depth: number, grow: boolean): Node | undefined {
    if (--this.partsLeft < 0) return undefined;
    switch (typeof value) {
      case 'string':
        return value.length > MAX_STRING ? undefined : this.next(node, value, grow);
      case 'number':
      case 'boolean':
      case 'undefined':
      case 'bigint':
        return this.next(node, value, grow);
      case 'object':
        if (value === null) return this.next(node, value, grow);
        return depth === MAX_DEPTH ? undefined : this.descendContainer(node, value, depth + 1, grow);
      default:
        return undefined;
    }
  }

  private descendContainer(node: Node, value: object, depth: number, grow: boolean): Node | undefined {
    let at: Node | undefined;
    if (Array.isArray(value)) {
      at = this.next(node, OPEN_ARRAY, grow);
      for (let i = 0; at !== undefined && i < value.length; i++) at = this.descend(at, value[i], depth, grow);
    } else {
      const proto = Object.getPrototypeOf(value);
      if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length !== 0) return undefined;
      const keys = Object.keys(value);
      if (keys.length > 1) keys.sort();
      at = this.next(node, OPEN_OBJECT, grow);
      for (let i = 0; at !== undefined && i < keys.length; i++) {
        const item = (value as Record<string, unknown>)[keys[i]];
        if (item === undefined) continue;
        at = this.next(at, keys[i], grow);
        if (at !== undefined) at = this.descend(at, item, depth, grow);
      }
    }
    return at === undefined ? undefined : this.next(at, CLOSE, grow);
  }

  private next(node: Node, part: unknown, grow: boolean): Node | undefined {
    if (node.part === part) return node.child;
    const child = node.others?.get(part);
    if (child !== undefined || !grow) return child;
    const added = new Node();
    this.added += NODE_BYTES + (typeof part === 'string' ? STRING_BYTES + part.length : 0);
    // NaN goes in the Map, whose equality finds it again; `===` would not.
    if (node.child === undefined && part === part) {
      node.part = part;
      node.child = added;
    } else {
      if (node.others === undefined) {
        node.others = new Map();
        this.added += MAP_BYTES;
      }
      node.others.set(part, added);
      this.added += MAP_ENTRY_BYTES;
    }
    return added;
  }
}
