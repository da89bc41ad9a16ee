/**
 * The cached method every scenario measures: `(id: number, opts: { region: string })`, async,
 * as in issue 6. A Computation counts its runs so that each subject can be checked to really
 * hit (no run while hits are timed) or really miss (one run per call).
 */
export interface Options {
  region: string;
}

export interface Value {
  id: number;
  region: string;
  total: number;
}

export type Lookup = (id: number, opts: Options) => Promise<Value>;

const REGIONS = ['eu-west', 'us-east', 'ap-south', 'sa-east'];

/** A fresh options object per call, as a caller would write it: no library can key on identity. */
export function optionsFor(id: number): Options {
  return { region: REGIONS[id & 3]! };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Computation {
  runs = 0;

  /** @param delayMs how long one computation takes (the stampede scenario's 20 ms); 0 = no wait. */
  constructor(private readonly delayMs = 0) {}

  /**
   * The work: the value at once, or a promise of it after the delay. A decorated method's body
   * is `return computation.result(id, opts)`, as `run`'s is, so a library that caches a method
   * and one that memoizes `run` each cache one async function doing the same work.
   */
  result(id: number, opts: Options): Value | Promise<Value> {
    this.runs++;
    const value = { id, region: opts.region, total: id * 2 };
    return this.delayMs > 0 ? sleep(this.delayMs).then(() => value) : value;
  }

  /** The async function given to libraries that memoize functions. */
  readonly run = async (id: number, opts: Options): Promise<Value> => this.result(id, opts);
}

/** Throws unless `value` is what the computation returns for `id`: a cache must not serve a wrong entry. */
export function check(value: Value, id: number, subject: string): void {
  if (value?.id !== id || value.total !== id * 2) {
    throw new Error(`${subject} returned ${JSON.stringify(value)} for id ${id}`);
  }
}
