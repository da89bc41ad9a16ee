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

/** Keys kept per call site before the trie starts over: a bound on memory (~150 B a key). */
const DEFAULT_MAX_KEYS = 4096;
/** Parts of one argument list, and the nesting depth, past which it is encoded every time. */
const MAX_PARTS = 32;
const MAX_DEPTH = 4;
/** Longer strings are encoded every time, so the trie does not keep a second copy of them. */
const MAX_STRING = 256;

const NO_PART = Symbol('no part');
const OPEN_ARRAY = Symbol('[');
const OPEN_OBJECT = Symbol('{');
const CLOSE = Symbol(']');

/** Most nodes have one child, kept inline; a Map only appears where paths branch. */
class Node {
  part: unknown = NO_PART;
  child: Node | undefined = undefined;
  others: Map<unknown, Node> | undefined = undefined;
  key: string | undefined = undefined;
}

export class KnownKeys {
  constructor(private readonly maxKeys = DEFAULT_MAX_KEYS) {}

  private root = new Node();
  private size = 0;
  /** Parts the current walk may still take. */
  private budget = 0;

  /** The key learnt for `args`, if any. */
  find(args: ArrayLike<unknown>): string | undefined {
    return this.walk(args, false)?.key;
  }

  /** Remembers `key` as the encoding of `args`; a no-op for arguments the trie does not take. */
  learn(args: ArrayLike<unknown>, key: string): void {
    if (this.size >= this.maxKeys) this.forget();
    const node = this.walk(args, true);
    if (node === undefined || node.key !== undefined) return;
    node.key = key;
    this.size++;
  }

  /** Drops every key: they were built on a key prefix that has changed. */
  forget(): void {
    this.root = new Node();
    this.size = 0;
  }

  private walk(args: ArrayLike<unknown>, grow: boolean): Node | undefined {
    this.budget = MAX_PARTS;
    let node: Node | undefined = this.root;
    for (let i = 0; node !== undefined && i < args.length; i++) node = this.descend(node, args[i], 0, grow);
    return node;
  }

  /** The node after `value`'s parts; undefined where the path is unknown (or not taken). */
  private descend(node: Node, value: unknown, depth: number, grow: boolean): Node | undefined {
    if (--this.budget < 0) return undefined;
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
        const item = (value as Record<string, unknown>)[keys[i]!];
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
    // NaN goes in the Map, whose equality finds it again; `===` would not.
    if (node.child === undefined && part === part) {
      node.part = part;
      node.child = added;
    } else {
      (node.others ??= new Map()).set(part, added);
    }
    return added;
  }
}
