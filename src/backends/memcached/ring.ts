import { createHash } from 'node:crypto';

/** Points per server: 40 md5 digests of 4 points each, as in libmemcached's ketama. */
export const POINTS_PER_SERVER = 160;

/** A key's position on the ring: the first 4 bytes of its md5, little-endian (ketama). */
export function ringPosition(key: string): number {
  return createHash('md5').update(key).digest().readUInt32LE(0);
}

/**
 * Consistent hashing, ketama style: every server owns {@link POINTS_PER_SERVER} pseudo-random
 * points on a 32-bit circle, and a key belongs to the server of the first point at or after
 * the key's own position. Removing a server hands only its arcs to the servers after them, so
 * only its keys move; adding it back returns exactly those keys. (Modulo placement, by
 * contrast, moves almost every key when the server count changes.)
 */
export class HashRing<T> {
  private readonly points: Uint32Array;
  private readonly owners: T[];

  /** `nodes` are placed by `name(node)`, which must be stable across processes (host:port). */
  constructor(
    readonly nodes: readonly T[],
    name: (node: T) => string,
  ) {
    const placed: { point: number; label: string; owner: T }[] = [];
    for (const node of nodes) {
      const label = name(node);
      for (let i = 0; i < POINTS_PER_SERVER / 4; i++) {
        const digest = createHash('md5').update(`${label}-${i}`).digest();
        for (let j = 0; j < 4; j++) placed.push({ point: digest.readUInt32LE(j * 4), label, owner: node });
      }
    }
    // Ties between servers go by name, so every process builds the same ring whatever the
    // order in which its servers were listed.
    placed.sort((a, b) => a.point - b.point || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    this.points = Uint32Array.from(placed, (entry) => entry.point);
    this.owners = placed.map((entry) => entry.owner);
  }

  /** The node that owns `position`, or undefined when the ring is empty. */
  locate(position: number): T | undefined {
    const points = this.points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle] < position) low = middle + 1;
      else high = middle;
    }
    return this.owners[low === points.length ? 0 : low];
  }
}
