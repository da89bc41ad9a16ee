import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisBackend, type RemoteBackendOptions } from 'hoard';
import type { RedisServer } from '../../spec/support/servers.js';
import { interleave, median, type Budget } from '../harness.js';
import { formatRate, type Section } from '../report.js';

/*
 * What `compression`, `integrity` and `encryption` cost and save on a real Redis: the bytes one
 * entry takes on the server, and the hits and sets a second one caller gets through, for JSON
 * values from 256 B to 1 MB.
 */

/** A JSON document of about `bytes` bytes: records with ids, names, e-mails and numbers, like an API's. */
function document(bytes: number): unknown {
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const records: unknown[] = [];
  let size = 2;
  while (size < bytes) {
    const id = next();
    const record = {
      id,
      name: `${words[id % 12]} ${words[next() % 12]}`,
      email: `user${id % 100_000}@example.com`,
      score: (next() % 10_000) / 100,
      active: next() % 2 === 0,
      tags: [words[next() % 12], words[next() % 12]],
    };
    size += JSON.stringify(record).length + 1;
    records.push(record);
  }
  return records;
}

const SIZES: [string, number][] = [
  ['256 B', 256],
  ['1 KB', 1024],
  ['4 KB', 4096],
  ['100 KB', 100 * 1024],
  ['1 MB', 1024 * 1024],
];

const secret = randomBytes(32);
const CONFIGURATIONS: [string, RemoteBackendOptions][] = [
  ['plain', {}],
  ['gzip', { compression: { threshold: 0 } }],
  ['brotli', { compression: { threshold: 0, algorithm: 'brotli' } }],
  ['integrity', { integrity: { keys: [secret] } }],
  ['encryption', { encryption: { keys: [secret] } }],
  ['gzip + encryption', { compression: { threshold: 0 }, encryption: { keys: [secret] } }],
];

/** Operations per second of `operation`, one at a time, during one slice of `sliceMs` (at least two operations). */
async function rate(operation: () => unknown, sliceMs: number): Promise<number> {
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < sliceMs || ops < 2) {
    await operation();
    ops++;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

/** A backend that never connects, to time what it does around the serializer without a server. */
class Codec extends RedisBackend {
  constructor(options: RemoteBackendOptions) {
    super({ lazyConnect: true, prefix: 'bench:', ...options });
  }
  encodeEntry(value: unknown): Buffer | string {
    return this.encode('entry', value, 60);
  }
  decodeEntry(data: Buffer): unknown {
    return this.decode('entry', data);
  }
}

/**
 * What the figures decided when the defaults were chosen (the run of 2026-12-03): the stored
 * bytes do not change from run to run; the µs are that run's.
 */
const DECISIONS = `**What the figures decided** (from \`npm run bench -- stored-values\` of 2026-12-03, on this machine under load
about 17: stored bytes are exact, the hits/s and sets/s columns were dominated by that load, the decode and encode
columns, timed in process, are the steadier guide).
- *Default threshold, 1024 bytes.* gzip keeps 51 % of a 256-byte value (182 bytes saved) but adds tens of
  µs to every hit and over a hundred to every store, the order of a whole loopback round trip, for a few
  hundred bytes. From 1 KB on it keeps 30 % or less (18 % at 4 KB, 12–13 % from 100 KB), so the bytes
  saved grow with the value while the fixed cost does not. Rails chose the same threshold.
- *Big values.* A 1 MB JSON value is stored in 130 KB (gzip) or 95 KB (brotli): under memcached's 1 MiB
  item limit, and an eighth of the bytes to send. Hits on 100 KB and 1 MB values cost about the same with
  and without compression on loopback (decompressing replaces moving the bytes); over a real network the
  smaller entry wins. Stores pay for compressing: about 3× the encode time at 100 KB and 1 MB.
- *Default algorithm, gzip.* brotli at quality 4 stores about as much at 1–100 KB and less at 1 MB, encoding
  slower small values and faster large ones; gzip is chosen because its CRC turns a corrupted entry into a decode error even without
  \`integrity\`.
- *Integrity and encryption per hit.* The header adds 49 bytes (integrity) or 45 (encryption) to an entry.
  Checking costs about 30–50 µs more per hit at 1–4 KB, 200–500 µs at 100 KB and 3–10 ms at 1 MB (where
  deserializing the value itself takes over 30 ms); encryption costs more than integrity when storing.`;

interface Measured {
  name: string;
  stored: number;
  hits: number[];
  sets: number[];
  decode: number[];
  encode: number[];
}

export async function storedValues(server: RedisServer, budget: Budget): Promise<Section> {
  const admin = new Redis(server.url);
  const rows: string[][] = [];
  for (const [sizeName, bytes] of SIZES) {
    const value = document(bytes);
    const subjects = [];
    for (const [name, options] of CONFIGURATIONS) {
      const prefix = `bench-values:${sizeName}:${name}:`;
      const backend = new RedisBackend({ url: server.url, prefix, ...options });
      await backend.set('entry', value, 0);
      const codec = new Codec(options);
      const written = codec.encodeEntry(value);
      const data = typeof written === 'string' ? Buffer.from(written) : written;
      const measured: Measured = {
        name,
        stored: await admin.strlen(`${prefix}entry`),
        hits: [],
        sets: [],
        decode: [],
        encode: [],
      };
      subjects.push({ backend, codec, data, measured });
    }
    // Configurations take turns in every round, so the shared machine's noise falls on all alike.
    await interleave(subjects, budget.rounds, async ({ backend, codec, data, measured }) => {
      measured.hits.push(await rate(() => backend.get('entry'), budget.sliceMs));
      measured.sets.push(await rate(() => backend.set('entry', value, 0), budget.sliceMs));
      measured.decode.push(await rate(() => codec.decodeEntry(data), budget.sliceMs / 2));
      measured.encode.push(await rate(() => codec.encodeEntry(value), budget.sliceMs / 2));
    });
    const plain = subjects[0]!.measured;
    for (const { backend, codec, measured } of subjects) {
      const [hits, sets, decode, encode] = [measured.hits, measured.sets, measured.decode, measured.encode].map(median) as [
        number,
        number,
        number,
        number,
      ];
      rows.push([
        sizeName,
        measured.name,
        String(measured.stored),
        `${((measured.stored / plain.stored) * 100).toFixed(0)} %`,
        formatRate(hits),
        formatRate(sets),
        (1e6 / decode).toFixed(1),
        (1e6 / encode).toFixed(1),
      ]);
      await backend.clear();
      await Promise.all([backend.close(), codec.close()]);
    }
  }
  admin.disconnect();
  return {
    title: 'Compression and protection of stored values',
    description:
      'One `RedisBackend` per configuration on a local redis-server, one caller at a time: `get` of one stored entry ' +
      '(hits/s) and `set` of it (sets/s: what a miss pays to store), for a JSON array of records (ids, names, e-mails, ' +
      'numbers) of the given serialized size; configurations take turns in every round. "decode" and "encode" are ' +
      "the same backend's work around the server, timed without one: µs to check, decompress and deserialize an " +
      'entry (every hit pays it) and to serialize, compress and sign or encrypt a value (every store). Compression is ' +
      'applied at every size here (`threshold: 0`) to show where it pays; "stored" is `STRLEN` of the entry.',
    columns: ['value', 'configuration', 'stored bytes', 'of plain', 'hits/s', 'sets/s', 'µs decode', 'µs encode'],
    rows,
    bars: [],
    targets: [],
    command: 'npm run bench -- stored-values',
    notes: DECISIONS,
  };
}
