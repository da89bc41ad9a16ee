import { moduleConfig } from './config.js';

/**
 * Every key hoard writes, built here and nowhere else (docs/keys.md has the table). With
 * `keyPrefix` P, `version` V and a method's `namespace` N:
 *
 *   entries   P [vV:] [N:] Class.method:<arguments>     derived from the arguments
 *             P [vV:] [N:] <custom key>                 a `key` option
 *   records   P hoard:gen:[N:]Class.method             the method's generation token
 *             P hoard:tag:<tag>                         a tag's version token
 *   locks     P hoard:lock:<entry key without P>        `@Cached({ lock: true })`
 *
 * Records carry no version: processes of two deploys share the data an invalidation is about,
 * so one's invalidation must reach the other's entries. Records and locks live under
 * `P hoard:`, which no entry key may start with (see {@link isReserved}).
 */
const RESERVED = 'hoard:';

/** What entry keys of a method or function start with: `keyPrefix`, then `v<version>:`, then `namespace:`. */
export function entryBase(namespace: string | undefined): string {
  const { keyPrefix, version } = moduleConfig();
  const versioned = version === undefined ? keyPrefix : `${keyPrefix}v${version}:`;
  return namespace === undefined ? versioned : `${versioned}${namespace}:`;
}

/** What every derived key of `label` starts with; the arguments' encoding follows. */
export function derivedBase(namespace: string | undefined, label: string): string {
  return `${entryBase(namespace)}${label}:`;
}

/** The record whose token every derived entry of `label` is stamped with. */
export function generationKey(namespace: string | undefined, label: string): string {
  return `${moduleConfig().keyPrefix}${RESERVED}gen:${namespace === undefined ? '' : `${namespace}:`}${label}`;
}

/** The record whose token every entry stored with `tag` is stamped with. */
export function tagKey(tag: string): string {
  return `${moduleConfig().keyPrefix}${RESERVED}tag:${tag}`;
}

/** The lock entry of `@Cached({ lock: true })` for the entry at `entryKey`. */
export function lockKey(entryKey: string): string {
  const { keyPrefix } = moduleConfig();
  return `${keyPrefix}${RESERVED}lock:${entryKey.slice(keyPrefix.length)}`;
}

/** Whether an entry key would fall among hoard's records and locks (a custom key or namespace starting `hoard:`). */
export function isReserved(entryKey: string): boolean {
  const { keyPrefix } = moduleConfig();
  return entryKey.startsWith(RESERVED, keyPrefix.length) && entryKey.startsWith(keyPrefix);
}
