import { MemoryBackend, type CacheBackend, type CacheEntries } from 'hoard';

/**
 * Our own MemoryBackend behind promises: the asynchronous contract of a remote backend
 * without a server, for call-path specs that are not about a server (sinon stubs its methods
 * to inject faults). Backend behaviour against real servers is in spec/backends.
 */
export class AsyncMemoryBackend implements CacheBackend {
  readonly synchronous = false;
  readonly memory = new MemoryBackend();

  async get(key: string) {
    return this.memory.get(key);
  }
  async lookup(key: string) {
    return this.memory.lookup(key);
  }
  async set(key: string, value: unknown, ttl?: number) {
    this.memory.set(key, value, ttl);
  }
  async add(key: string, value: unknown, ttl?: number) {
    return this.memory.add(key, value, ttl);
  }
  async delete(key: string) {
    return this.memory.delete(key);
  }
  async has(key: string) {
    return this.memory.has(key);
  }
  async getMany(keys: readonly string[]) {
    return this.memory.getMany(keys);
  }
  async setMany(entries: CacheEntries, ttl?: number) {
    this.memory.setMany(entries, ttl);
  }
  async deleteMany(keys: readonly string[]) {
    return this.memory.deleteMany(keys);
  }
  async clear() {
    this.memory.clear();
  }
  async increment(key: string, delta?: number) {
    return this.memory.increment(key, delta);
  }
  async decrement(key: string, delta?: number) {
    return this.memory.decrement(key, delta);
  }
  async close() {
    this.memory.close();
  }
}
