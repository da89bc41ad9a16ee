/** Most keys one multi-key read carries; a tick that asks for more sends several. */
const MAX_KEYS = 1000;

/**
 * Single-key reads asked for in the same tick, sent as one multi-key read once the tick's code
 * and microtasks have run (`process.nextTick`): 256 concurrent lookups become one `MGET`, one
 * command for the client and the server to handle instead of 256. A read is sent later than it
 * was asked for, never earlier, so it cannot overtake a command the client was given before it.
 */
export class ReadBatch<T, K = string> {
  private keys: K[] = [];
  private resolvers: ((value: T) => void)[] = [];
  private rejecters: ((error: unknown) => void)[] = [];

  /** `readMany(keys)` answers with the values in the order of `keys`. */
  constructor(private readonly readMany: (keys: K[]) => Promise<readonly T[]>) {}

  read(key: K): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.keys.length === 0) process.nextTick(this.flush);
      this.keys.push(key);
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
      if (this.keys.length === MAX_KEYS) this.flush();
    });
  }

  private readonly flush = (): void => {
    const { keys, resolvers, rejecters } = this;
    if (keys.length === 0) return;
    this.keys = [];
    this.resolvers = [];
    this.rejecters = [];
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
      for (let i = 0; i < resolvers.length; i++) resolvers[i]!(values[i] as T);
    }, failed);
  };
}
