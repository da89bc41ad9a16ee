/**
 * The bytes a remote backend stored, read and written from outside hoard: ioredis on its own
 * connection, or a socket speaking memcached's meta protocol. What someone with write access to
 * the shared server (and no keys) can do to hoard's entries.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { MemcachedBackend, RedisBackend, type RemoteBackend, type RemoteBackendOptions } from 'hoard';
import { Keyspace, SERIALIZED_FLAGS } from '#src/backends/memcached/keyspace.js';
import type { ManagedServer, RedisServer } from './servers.js';

export interface RawEntries {
  /** The stored bytes of hoard key `key`, or undefined when there is none. */
  read(key: string): Promise<Buffer | undefined>;
  /** Stores `bytes` as the entry of hoard key `key` (memcached: with `flags`, default a serialized value's), keeping no TTL. */
  write(key: string, bytes: Buffer | string, flags?: number): Promise<void>;
  close(): Promise<void>;
}

/** One kind of remote backend over a server the spec started: a backend under `prefix`, and its raw entries. */
export interface RemoteKind {
  readonly name: 'Redis' | 'Memcached';
  backend(prefix: string, options?: RemoteBackendOptions): RemoteBackend;
  raw(prefix: string): RawEntries;
}

/** Both kinds; the servers are read when used, so they may be started in a `before` hook. */
export function remoteKinds(redis: () => RedisServer, memcached: () => ManagedServer): RemoteKind[] {
  return [
    {
      name: 'Redis',
      backend: (prefix, options) => new RedisBackend({ url: redis().url, prefix, ...options }),
      raw: (prefix) => rawRedis(redis(), prefix),
    },
    {
      name: 'Memcached',
      backend: (prefix, options) => new MemcachedBackend({ servers: [memcached().address], prefix, ...options }),
      raw: (prefix) => rawMemcached(memcached(), prefix),
    },
  ];
}

export function rawRedis(server: RedisServer, prefix: string): RawEntries {
  const client = new Redis(server.url);
  return {
    read: async (key) => (await client.getBuffer(prefix + key)) ?? undefined,
    write: async (key, bytes) => {
      await client.set(prefix + key, bytes);
    },
    close: async () => {
      client.disconnect();
    },
  };
}

/** One request on a fresh connection; resolves with the reply's bytes once `complete` accepts them. */
function exchange(port: number, request: Buffer, complete: (reply: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => finish(new Error('memcached gave no complete reply within 2 s')), 2000);
    function finish(error?: Error): void {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    }
    socket.once('error', finish);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (complete(Buffer.concat(chunks))) finish();
    });
    socket.write(request);
  });
}

const endsWithLine = (reply: Buffer) => reply.length >= 2 && reply.subarray(-2).toString() === '\r\n';

export function rawMemcached(server: ManagedServer, prefix: string): RawEntries {
  const keys = new Keyspace(prefix);
  const token = async (key: string): Promise<string> => {
    const reply = (await exchange(server.port, Buffer.from(`mg ${keys.generationToken} b v\r\n`), endsWithLine)).toString(
      'latin1',
    );
    const match = /^VA \d+\r\n(\d+)\r\n$/.exec(reply);
    if (match === null) throw new Error(`no generation for prefix ${prefix}: ${JSON.stringify(reply)}`);
    return keys.token(Number(match[1]), key);
  };
  return {
    read: async (key) => {
      const reply = await exchange(server.port, Buffer.from(`mg ${await token(key)} b v\r\n`), (bytes) => {
        const line = bytes.indexOf('\r\n');
        if (line < 0) return false;
        const head = bytes.subarray(0, line).toString('latin1');
        return !head.startsWith('VA ') || bytes.length >= line + 2 + Number(head.split(' ')[1]) + 2;
      });
      const line = reply.indexOf('\r\n');
      const head = reply.subarray(0, line).toString('latin1');
      if (head === 'EN') return undefined;
      return reply.subarray(line + 2, line + 2 + Number(head.split(' ')[1]));
    },
    write: async (key, bytes, flags = SERIALIZED_FLAGS) => {
      const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
      const request = Buffer.concat([
        Buffer.from(`ms ${await token(key)} ${data.length} b T0 F${flags}\r\n`),
        data,
        Buffer.from('\r\n'),
      ]);
      const reply = (await exchange(server.port, request, endsWithLine)).toString('latin1');
      if (reply !== 'HD\r\n') throw new Error(`memcached refused the write: ${JSON.stringify(reply)}`);
    },
    close: async () => undefined,
  };
}
