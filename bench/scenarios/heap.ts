import { CacheModule, MemoryBackend } from 'hoard';
import { LRUCache } from 'lru-cache';
import { interleave, median } from '../harness.js';
import type { Section } from '../report.js';
import { bentocacheWith, floor, hoardMethod, lruCacheWith, memoizee } from '../subjects/memory.js';
import { cachedMethod, registerBackend, TTL_SECONDS } from '../subjects/hoard.js';
import { build, jsonKey, type SubjectFactory } from '../subjects/subject.js';
import { check, Computation, optionsFor, type Value } from '../workload.js';

const ENTRIES = 100_000;
const BOUND = 300;
/** Issue 21: MemoryBackend's own bytes per entry over a bare Map holding the same keys and values. */
const OVERHEAD_BOUND = 48;
const STORE_SIZES = [100_000, 1_000_000];

const subjects: SubjectFactory[] = [floor, hoardMethod, lruCacheWith(ENTRIES), memoizee, bentocacheWith(ENTRIES)];

/**
 * Bytes held after full GCs: the V8 heap and the ArrayBuffers outside it, where typed arrays
 * larger than a few dozen bytes keep their cells (MemoryBackend's and lru-cache's recency lists).
 */
export function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the heap scenario needs `node --expose-gc` (npm run bench passes it)');
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** Heap growth per entry after filling a fresh subject with ENTRIES entries through its lookup, after full GCs. */
async function bytesPerEntry(factory: SubjectFactory): Promise<number> {
  const before = collect();
  const subject = await build(factory, new Computation(), undefined);
  for (let id = 0; id < ENTRIES; id++) check(await subject.lookup(id, optionsFor(id)), id, subject.name);
  const after = collect();
  if (subject.computation.runs !== ENTRIES)
    throw new Error(`${subject.name} computed ${subject.computation.runs} times for ${ENTRIES} keys`);
  await subject.close();
  return (after - before) / ENTRIES;
}

/** `100k`, `1M`. */
export function count(entries: number): string {
  return entries >= 1_000_000 ? `${entries / 1_000_000}M` : `${entries / 1000}k`;
}

/** A key-value store as the backend-level measurement fills it. */
export interface Store {
  readonly size: number;
  get(key: string): unknown;
  set(key: string, value: Value): unknown;
}

export interface StoreSubject {
  readonly name: string;
  create(entries: number): Store;
}

export const stores: StoreSubject[] = [
  { name: 'Map', create: () => new Map<string, Value>() },
  { name: 'hoard MemoryBackend', create: (entries) => new MemoryBackend({ maxEntries: entries, defaultTtl: TTL_SECONDS }) },
  { name: 'lru-cache', create: (entries) => new LRUCache<string, Value>({ max: entries, ttl: TTL_SECONDS * 1000 }) },
];

/**
 * Bytes per entry of the store alone: the keys and values exist before it is made and after it
 * is dropped, so what grows is the store's own bookkeeping (a Map's table, a cache's lists).
 */
export function storeBytesPerEntry(subject: StoreSubject, keys: readonly string[], values: readonly Value[]): number {
  const before = collect();
  const store = subject.create(keys.length);
  for (let i = 0; i < keys.length; i++) store.set(keys[i]!, values[i]!);
  const after = collect();
  // Read after the measurement, so the store is still reachable when the heap is measured.
  if (store.size !== keys.length) throw new Error(`${subject.name} holds ${store.size} of ${keys.length} entries`);
  return (after - before) / keys.length;
}

async function overheadSection(rounds: number): Promise<Section> {
  const rows: string[][] = [];
  const targets = [];
  for (const entries of STORE_SIZES) {
    const keys = Array.from({ length: entries }, (_, id) => `Reports.lookup:${jsonKey(id, optionsFor(id))}`);
    const values = keys.map((_, id) => ({ id, region: optionsFor(id).region, total: id * 2 }));
    const samples = await interleave(stores, rounds, async (subject) => storeBytesPerEntry(subject, keys, values));
    const bytes = samples.map(median);
    const overMap = (i: number) => bytes[i]! - bytes[0]!;
    stores.forEach((subject, i) => {
      rows.push([
        count(entries),
        subject.name,
        bytes[i]!.toFixed(1),
        i === 0 ? '–' : `${overMap(i) >= 0 ? '+' : ''}${overMap(i).toFixed(1)}`,
        samples[i]!.map((b) => b.toFixed(1)).join(', '),
      ]);
    });
    const hoard = overMap(stores.findIndex((subject) => subject.name === 'hoard MemoryBackend'));
    targets.push({
      target: `MemoryBackend over a bare Map at ${count(entries)} entries ≤ +${OVERHEAD_BOUND} B`,
      measured: `+${hoard.toFixed(1)} B`,
      holds: hoard <= OVERHEAD_BOUND,
    });
  }
  return {
    title: 'Memory per entry over a bare Map',
    description:
      'Bytes a store adds per entry when it holds keys and values that already exist: each store is filled with ' +
      `${STORE_SIZES.map(count).join(' and then ')} \`set\`s of the workload's keys (about 40 characters) and values ` +
      "(objects of three fields), made before the store and kept after it, so the figure is the store's own " +
      'bookkeeping. Measured as V8 heap plus ArrayBuffers (`process.memoryUsage()`, after full GCs, ' +
      '`node --expose-gc`): typed arrays keep their cells outside the heap. Bounded stores are sized for the ' +
      'entries and given a TTL (so they keep an expiry per entry); median of the rounds.',
    columns: ['Entries', 'Store', 'Bytes per entry', 'Over Map', 'Rounds'],
    rows,
    bars: [],
    targets,
  };
}

/** Issue 21: many cached methods, each called with many distinct arguments. */
const METHODS = 200;
const ARGUMENT_LISTS = 10_000;
/** The documented default of `CacheModule.configure({ learntKeysBytes })`. */
const LEARNT_KEYS_DEFAULT = 4 * 1024 * 1024;

/**
 * Bytes held after METHODS fresh @Cached methods were each called twice with ARGUMENT_LISTS
 * distinct argument lists (the second call is a hit, which learns the key), with learnt keys
 * bounded by `learntKeysBytes`. The entries are the same whatever the bound.
 */
async function learntKeysRun(learntKeysBytes: number): Promise<number> {
  CacheModule.configure({ learntKeysBytes });
  const before = collect();
  const backend = new MemoryBackend({ maxEntries: METHODS * ARGUMENT_LISTS });
  const name = registerBackend(backend);
  const computation = new Computation();
  const lookups = Array.from({ length: METHODS }, (_, i) => cachedMethod(name, computation, undefined, `m${i}`));
  for (let pass = 0; pass < 2; pass++) {
    for (const lookup of lookups)
      for (let id = 0; id < ARGUMENT_LISTS; id++) check(await lookup(id, optionsFor(id)), id, 'hoard @Cached');
  }
  const after = collect();
  if (computation.runs !== METHODS * ARGUMENT_LISTS)
    throw new Error(`computed ${computation.runs} times for ${METHODS * ARGUMENT_LISTS} keys`);
  backend.close();
  return after - before;
}

async function learntKeysSection(rounds: number): Promise<Section> {
  const settings = [
    { name: 'not learnt (`learntKeysBytes: 0`)', bytes: 0 },
    { name: 'default bound (4 MiB)', bytes: LEARNT_KEYS_DEFAULT },
    { name: 'no process-wide bound (as before: 4,096 keys per method)', bytes: Number.MAX_SAFE_INTEGER },
  ];
  const samples = await interleave(settings, rounds, (setting) => learntKeysRun(setting.bytes));
  CacheModule.configure({ learntKeysBytes: LEARNT_KEYS_DEFAULT });
  const held = samples.map(median);
  const beyond = (i: number) => held[i]! - held[0]!;
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return {
    title: 'Learnt keys across many methods',
    description:
      `${METHODS} @Cached methods on one MemoryBackend, each called with ${ARGUMENT_LISTS / 1000}k distinct argument lists, twice ` +
      '(the second call is a hit, which learns the key of its arguments so later hits need not encode them). ' +
      'Heap plus ArrayBuffers after full GCs; "beyond the entries" is the growth over the same run with learning off, ' +
      'whose entries are the same. Median of the rounds.',
    columns: ['Learnt keys', 'Held', 'Beyond the entries', 'Rounds (beyond the entries)'],
    rows: settings.map((setting, i) => [
      setting.name,
      mib(held[i]!),
      i === 0 ? '–' : mib(beyond(i)),
      i === 0 ? '–' : samples[i]!.map((bytes, round) => mib(bytes - samples[0]![round]!)).join(', '),
    ]),
    bars: [],
    targets: [
      {
        target: `learnt keys of ${METHODS} methods × ${ARGUMENT_LISTS / 1000}k arguments within the default bound (${mib(LEARNT_KEYS_DEFAULT)})`,
        measured: mib(beyond(1)),
        holds: beyond(1) <= LEARNT_KEYS_DEFAULT,
      },
    ],
  };
}

export async function heap(rounds: number): Promise<Section[]> {
  const samples = await interleave(subjects, rounds, bytesPerEntry);
  const bytes = samples.map(median);
  const mapBytes = bytes[subjects.indexOf(floor)]!;
  const hoard = bytes[subjects.indexOf(hoardMethod)]!;
  const calls: Section = {
    title: 'Heap per entry at 100k entries',
    description:
      `V8 heap plus ArrayBuffers growth (after full GCs, \`node --expose-gc\`) divided by ${ENTRIES / 1000}k, after ${ENTRIES / 1000}k distinct ` +
      'calls of the workload through each subject; median of the rounds. It includes what every entry carries in every ' +
      'subject: its key string (about 30 characters) and its value (an object of three fields). Bounded caches are ' +
      `sized for ${ENTRIES / 1000}k entries. Map is the floor's Map memoization.`,
    columns: ['Subject', 'Bytes per entry', 'Over Map', 'Rounds'],
    rows: subjects.map((factory, i) => [
      factory.role === 'floor' ? 'Map (floor)' : factory.name,
      bytes[i]!.toFixed(0),
      factory.role === 'floor' ? '–' : `${bytes[i]! - mapBytes >= 0 ? '+' : ''}${(bytes[i]! - mapBytes).toFixed(0)}`,
      samples[i]!.map((b) => b.toFixed(0)).join(', '),
    ]),
    bars: [],
    targets: [
      {
        target: `heap per entry at 100k, hoard MemoryBackend ≤ ${BOUND} B`,
        measured: `${hoard.toFixed(0)} B`,
        holds: hoard <= BOUND,
      },
    ],
  };
  return [calls, await overheadSection(rounds), await learntKeysSection(rounds)];
}
