/**
 * Calls under way, by key: what single flight joins. It answers as a `Map` would, but keeps
 * its first call in a slot of its own and only the others in a Map.
 *
 * When misses do not overlap, one call is under way at a time, and a Map would go from one
 * entry back to none on every miss. V8 reallocates a Map's table when it shrinks on that delete, and
 * again when it grows on the next set. The slot avoids both; what it saves on a memory miss is
 * measured in docs/benchmarks.md.
 */
export class Inflight<T> {
  private slotKey: string | undefined = undefined;
  private slotValue: T | undefined = undefined;
  private readonly others = new Map<string, T>();

  get(key: string): T | undefined {
    return key === this.slotKey ? this.slotValue : this.others.get(key);
  }

  set(key: string, value: T): void {
    if (key === this.slotKey || (this.slotKey === undefined && !this.others.has(key))) {
      this.slotKey = key;
      this.slotValue = value;
    } else {
      this.others.set(key, value);
    }
  }

  delete(key: string): void {
    if (key === this.slotKey) {
      this.slotKey = undefined;
      this.slotValue = undefined;
    } else {
      this.others.delete(key);
    }
  }
}
