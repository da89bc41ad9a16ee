import type { CacheBackend } from '../backends/backend.js';
import { CacheConfigError } from '../errors.js';
import { generationKey, tagKey } from '../module/keyspace.js';
import type { CachedOptions } from './options.js';

/**
 * Which records (runtime/records.ts) a `@Cached` method's entries are checked against: its
 * generation, and its tags. A method's generation is in play on a shared backend always (another
 * process may invalidate it); on a memory backend, which is this process's alone, only once it
 * was invalidated or expired here, so that until then a memory hit reads nothing else.
 */
export class SiteRecords {
  /** The records every entry is checked against: the generation and a fixed list of tags. */
  private fixed: readonly string[] | undefined;
  /** Whether lookups read records: false keeps a memory hit without tags or generation short. */
  checks = false;
  private invalidatedHere = false;

  constructor(private readonly options: Pick<CachedOptions, 'key' | 'tags' | 'namespace'>) {}

  /** The method's generation record. */
  generation(label: string): string {
    return generationKey(this.options.namespace, label);
  }

  /** Whether lookups read the generation now, i.e. entries stored from now on are stamped with it. */
  readsGeneration(label: string): boolean {
    return this.fixed?.includes(this.generation(label)) === true;
  }

  /** After the backend or configuration changed, or the method was invalidated here. */
  refresh(backend: CacheBackend, label: string): void {
    const { key, tags } = this.options;
    const records: string[] = [];
    if (key === undefined) {
      const generation = this.generation(label);
      if (!backend.synchronous || this.invalidatedHere || backend.has(generation)) records.push(generation);
    }
    if (Array.isArray(tags)) records.push(...tags.map(tagKey));
    this.fixed = records.length === 0 ? undefined : records;
    this.checks = this.fixed !== undefined || typeof tags === 'function';
  }

  /** The method's generation comes into play: its entries are checked against it from now on. */
  invalidated(backend: CacheBackend, label: string): void {
    this.invalidatedHere = true;
    this.refresh(backend, label);
  }

  /** The records of one call: the fixed ones, and the tags a `tags` function returns for its arguments. */
  forCall(self: unknown, args: unknown[], label: string): readonly string[] | undefined {
    const tags = this.options.tags;
    if (typeof tags !== 'function') return this.fixed;
    const list: unknown = tags.apply(self, args);
    if (!Array.isArray(list) || !list.every((tag) => typeof tag === 'string')) {
      const got = Array.isArray(list) ? 'an array holding other values' : typeof list;
      throw new CacheConfigError(`${label}: the \`tags\` function must return an array of strings, got ${got}`);
    }
    const own = list.map(tagKey);
    return this.fixed === undefined ? own : [...this.fixed, ...own];
  }
}
