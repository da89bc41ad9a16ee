/** A surrogate code unit that is not half of a pair: UTF-8 cannot carry it. */
const LONE_SURROGATE = /(\p{Cs})/u;

/**
 * A key as a binary-safe server (Redis) should receive it, so that two different strings never
 * become one key. A well-formed string is returned as is (the client sends its UTF-8, as it
 * always did). A string with a lone surrogate, which UTF-8 would turn into U+FFFD and so merge
 * with other strings, becomes its WTF-8 bytes: UTF-8 for everything else, and each lone
 * surrogate's own three bytes (ED A0–BF 80–BF), a sequence valid UTF-8 never contains. The
 * mapping is one-to-one over all strings, and no encoded key equals a well-formed key's bytes.
 */
export function keyBytes(text: string): string | Buffer {
  if (!LONE_SURROGATE.test(text)) return text;
  // Splitting on a capturing group alternates the well-formed runs and the lone surrogates.
  return Buffer.concat(
    text.split(LONE_SURROGATE).map((part, at) => {
      if (at % 2 === 0) return Buffer.from(part);
      const unit = part.charCodeAt(0);
      return Buffer.from([0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]);
    }),
  );
}
