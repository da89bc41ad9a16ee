/**
 * How a remote backend turns values into bytes and back. The default one
 * ({@link defaultSerializer}) round-trips JSON values plus `undefined`, `Date`, `BigInt`,
 * `Map`, `Set` and `Buffer`/`Uint8Array`, and never evaluates code.
 */
export interface Serializer {
  /** Throws when the value cannot be encoded; the value is then returned uncached. */
  serialize(value: unknown): Buffer | string;
  /** Receives the bytes exactly as stored; throws when they cannot be decoded. */
  deserialize(data: Buffer): unknown;
}
