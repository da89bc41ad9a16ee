import KeyvMemcache from '@keyv/memcache';
import { MemcachedBackend } from 'hoard';
import Keyv from 'keyv';
import memjs, { type Client as MemjsClient } from 'memjs';
import type { ManagedServer } from '../../spec/support/servers.js';
import type { Value } from '../workload.js';
import { cachedMethod, registerBackend, TTL_SECONDS, REMOTE_TIMEOUT } from './hoard.js';
import { jsonKey, memoizeRemote, type SubjectFactory } from './subject.js';

/** Every subject's keys start with a prefix of its own, so no two share entries on the one server. */
let prefixes = 0;
const freshPrefix = () => `b${++prefixes}:`;

/** The fastest way to GET with memjs, the raw Node client: its callback API, one promise per call. */
function memjsGet(client: MemjsClient, key: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => client.get(key, (error, value) => (error ? reject(error) : resolve(value))));
}

const floor: SubjectFactory<ManagedServer> = {
  name: 'floor: memjs GET',
  role: 'floor',
  async create(computation, server) {
    const client = memjs.Client.create(server.address);
    return {
      lookup: memoizeRemote(
        (key) => memjsGet(client, key),
        (key, text) => client.set(key, text, { expires: TTL_SECONDS }),
        computation,
        freshPrefix(),
      ),
      close: async () => client.quit(),
    };
  },
};

const hoard: SubjectFactory<ManagedServer> = {
  name: 'hoard @Cached + MemcachedBackend',
  role: 'hoard',
  async create(computation, server) {
    const backend = new MemcachedBackend({ servers: [server.address], prefix: freshPrefix(), timeout: REMOTE_TIMEOUT });
    return { lookup: cachedMethod(registerBackend(backend), computation), close: () => backend.close() };
  },
};

/** Keyv has no memoization of its own: this is the get-or-set its users write. */
const keyv: SubjectFactory<ManagedServer> = {
  name: 'Keyv + @keyv/memcache',
  role: 'peer',
  async create(computation, server) {
    const cache = new Keyv<Value>({ store: new KeyvMemcache(server.address), namespace: freshPrefix() });
    return {
      async lookup(id, opts) {
        const key = jsonKey(id, opts);
        const stored = await cache.get(key);
        if (stored !== undefined) return stored;
        const value = await computation.run(id, opts);
        await cache.set(key, value, TTL_SECONDS * 1000);
        return value;
      },
      close: () => cache.disconnect(),
    };
  },
};

export const memcachedSubjects: SubjectFactory<ManagedServer>[] = [floor, hoard, keyv];
