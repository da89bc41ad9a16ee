import * as zlib from 'node:zlib';
import { CacheArgumentError } from '../errors.js';

/** The node:zlib formats a remote backend can compress values with. */
export type CompressionAlgorithm = 'gzip' | 'brotli' | 'zstd';

/** `compression` of a remote backend. */
export interface CompressionOptions {
  /**
   * Serialized values of at least this many bytes are compressed, and stored compressed only when
   * that makes them smaller. Default 1024 (docs/benchmarks.md, "Compression", has the figures
   * behind it). `0` tries every value.
   */
  threshold?: number;
  /**
   * `'gzip'` (default), `'brotli'`, or `'zstd'` where the running Node has it (22.15 and later);
   * asking for zstd on a Node without it is a `TypeError` at construction. Entries are read back
   * whatever algorithm wrote them, so changing it needs no flush.
   */
  algorithm?: CompressionAlgorithm;
}

export const DEFAULT_COMPRESSION_THRESHOLD = 1024;

/**
 * Decompressed bytes an entry may expand to. Values whose serialized form is larger are stored
 * uncompressed, so a genuine entry never reaches the bound; a forged one that would (a
 * decompression bomb) fails to decode instead of filling the heap.
 */
export const MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

/** One algorithm's synchronous pair: values are encoded and decoded on the operation's own tick. */
export interface Compressor {
  readonly name: CompressionAlgorithm;
  compress(data: Buffer): Buffer;
  decompress(data: Buffer): Buffer;
}

type SyncCodec = (data: Buffer, options?: zlib.ZlibOptions & zlib.BrotliOptions) => Buffer;

/** zstd joined node:zlib in Node 22.15; looked up at run time so that Node 20 and its types need not know it. */
const zstd = zlib as unknown as { zstdCompressSync?: SyncCodec; zstdDecompressSync?: SyncCodec };

function compressor(name: CompressionAlgorithm, compress: SyncCodec, decompress: SyncCodec, options: object = {}): Compressor {
  return {
    name,
    compress: (data) => compress(data, options),
    decompress: (data) => decompress(data, { maxOutputLength: MAX_DECOMPRESSED_BYTES }),
  };
}

/**
 * By the id stored in an entry's header (never renumber: entries in caches carry these). Brotli's
 * default quality (11) is for static assets compressed once; a cache compresses on every miss.
 */
export const COMPRESSORS: ReadonlyMap<number, Compressor | CompressionAlgorithm> = new Map<
  number,
  Compressor | CompressionAlgorithm
>([
  [1, compressor('gzip', zlib.gzipSync, zlib.gunzipSync)],
  [
    2,
    compressor('brotli', zlib.brotliCompressSync, zlib.brotliDecompressSync, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 },
    }),
  ],
  [
    3,
    zstd.zstdCompressSync && zstd.zstdDecompressSync
      ? compressor('zstd', zstd.zstdCompressSync, zstd.zstdDecompressSync)
      : 'zstd',
  ],
]);

/** The header id of `algorithm` and its compressor; a TypeError naming the problem otherwise. */
export function compressorFor(label: string, algorithm: unknown): [number, Compressor] {
  for (const [id, entry] of COMPRESSORS) {
    const name = typeof entry === 'string' ? entry : entry.name;
    if (name !== algorithm) continue;
    if (typeof entry === 'string') {
      throw new CacheArgumentError(
        `${label}: compression.algorithm '${name}' needs a Node with zlib zstd support (22.15 or later); ` +
          `this is Node ${process.version}. Use 'gzip' or 'brotli'.`,
      );
    }
    return [id, entry];
  }
  throw new CacheArgumentError(`${label}: compression.algorithm must be 'gzip', 'brotli' or 'zstd', got ${String(algorithm)}`);
}
