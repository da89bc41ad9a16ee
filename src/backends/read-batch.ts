/** Most keys one multi-key read carries; a tick that asks for more sends several. */
const MAX_KEYS = 1000;

/**
 * Single-key reads asked for in the same tick, sent as one multi-key read once the tick's code
 * and microtasks have run (`process.nextTick`): 256 concurrent lookups become one `MGET`, one
 * command for the client and the server to handle instead of 256. A read is sent later than it
 * was asked for, never earlier, so it cannot overtake a command the client was given before it.
 *
 * A string key asked for twice in a tick is sent once and both reads get its answer: the calls
 * of a tick that check the same record (a method's generation) would otherwise send it once each.
 */
export class ReadBatch<T, K = string> {
  /** The distinct keys to send. */
  private keys: K[] = [];
  /** Per read, in the order asked: the index in `keys` of its key, and how to settle it. */
  private slots: number[] = [];
  private resolvers: ((value: T) => void)[] = [];
  private rejecters: ((error: unknown) => void)[] = [];
  /** Where each string key of this tick is in `keys`. */
  private sent = new Map<K, number>();

  /** `readMany(keys)` answers with the values in the order of `keys`. */
  constructor(private readonly readMany: (keys: K[]) => Promise<readonly T[]>) {}

  read(key: K): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.resolvers.length === 0) process.nextTick(this.flush);
      let slot = typeof key === 'string' ? this.sent.get(key) : undefined;
      if (slot === undefined) {
        slot = this.keys.push(key) - 1;
        if (typeof key === 'string') this.sent.set(key, slot);
      }
      this.slots.push(slot);
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
      if (this.keys.length === MAX_KEYS) this.flush();
    });
  }

  private readonly flush = (): void => {
    const { keys, slots, resolvers, rejecters } = this;
    if (resolvers.length === 0) return;
    this.keys = [];
    this.slots = [];
    this.resolvers = [];
    this.rejecters = [];
    this.sent.clear();
    const failed = (error: unknown): void => {
      for (const reject of rejecters) reject(error);
    };
    let reply: Promise<readonly T[]>;
    try {
      reply = this.readMany(keys);
    } catch (error) {
      failed(error);
      return;
    }
    reply.then((values) => {
      for (let i = 0; i < resolvers.length; i++) resolvers[i](values[slots[i]]);
    }, failed);
  };
}
