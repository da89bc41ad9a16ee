import { Socket } from 'node:net';
import { FrameParser, type Chunk, type Frame } from './protocol.js';

/** `expect` value for a batch that ends with `mn`: every frame up to and including `MN`. */
export const UNTIL_NOOP = -1;

interface Request {
  /** Frames still to come, or {@link UNTIL_NOOP}. */
  remaining: number;
  readonly frames: Frame[];
  /** `performance.now()` after which the request has failed. */
  readonly deadline: number;
  readonly resolve: (frames: Frame[]) => void;
  readonly reject: (error: Error) => void;
}

/** What a connection reports to its server, which counts failures in a row. */
export interface ConnectionEvents {
  /**
   * The connection died (refused, reset, timed out, garbled) while requests were pending; it
   * has rejected them. An idle connection that the server closes is not reported: the next
   * request simply opens another.
   */
  onFailure(connection: Connection, error: Error): void;
  /** A request got its full answer: the server is alive. */
  onSuccess(): void;
}

/**
 * One TCP connection to one memcached, pipelined: requests are written back to back (those
 * made in the same tick in one write) and memcached answers them in order, so the oldest
 * pending request owns the next frames.
 *
 * A request that gets no full answer within `timeoutMs` rejects, and so does every request
 * behind it: the connection is destroyed, because a late answer could no longer be told from
 * the next one. A hung server therefore costs callers at most `timeoutMs`, never more.
 */
export class Connection {
  private readonly socket: Socket;
  private readonly parser: FrameParser;
  /** Pending requests, oldest first, from `head` on (a queue without per-shift copying). */
  private queue: Request[] = [];
  private head = 0;
  private outgoing: Chunk[] = [];
  private timer?: NodeJS.Timeout;
  private dead?: Error;
  private closing = false;

  constructor(
    host: string,
    port: number,
    private readonly timeoutMs: number,
    private readonly events: ConnectionEvents,
  ) {
    this.parser = new FrameParser((frame) => this.receive(frame));
    this.socket = new Socket();
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true);
    this.socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.push(chunk);
      } catch (error) {
        this.fail(error as Error);
      }
    });
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('connection closed by the server')));
    this.socket.connect(port, host);
    // An idle connection must not keep the process alive; a pending request does.
    this.socket.unref();
  }

  /** False once the connection has failed or been closed: its owner opens another. */
  get usable(): boolean {
    return this.dead === undefined && !this.closing;
  }

  /** How many requests await their answer. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * Sends `chunks` (one or more commands) and resolves with the next `expect` frames, or with
   * every frame through `MN` when `expect` is {@link UNTIL_NOOP}.
   */
  exchange(chunks: readonly Chunk[], expect: number): Promise<Frame[]> {
    if (!this.usable) return Promise.reject(this.dead ?? new Error('connection closed'));
    return new Promise<Frame[]>((resolve, reject) => {
      if (this.pending === 0) this.socket.ref();
      this.queue.push({ remaining: expect, frames: [], deadline: performance.now() + this.timeoutMs, resolve, reject });
      this.timer ??= setTimeout(() => this.checkDeadline(), this.timeoutMs).unref();
      if (this.outgoing.length === 0) process.nextTick(() => this.flush());
      for (const chunk of chunks) this.outgoing.push(chunk);
    });
  }

  /** Closes once pending requests have answered (or failed); new requests are refused. */
  close(): void {
    this.closing = true;
    if (this.pending === 0) this.shutDown();
  }

  /** Drops the connection now, rejecting what is pending with `error`. */
  destroy(error: Error): void {
    this.fail(error, false);
  }

  private flush(): void {
    const chunks = this.outgoing;
    this.outgoing = [];
    if (this.dead !== undefined) return;
    // Command lines are joined into one string per run: one write of a batch instead of a writev
    // of hundreds of small pieces, which cost a large part of a hit's time (docs/benchmarks.md).
    this.socket.cork();
    let text = '';
    for (const chunk of chunks) {
      if (typeof chunk === 'string') {
        text += chunk;
        continue;
      }
      if (text !== '') this.socket.write(text);
      text = '';
      this.socket.write(chunk);
    }
    if (text !== '') this.socket.write(text);
    this.socket.uncork();
  }

  private receive(frame: Frame): void {
    const request = this.queue[this.head];
    if (request === undefined) {
      this.fail(new Error(`memcached sent an unrequested reply ${JSON.stringify(frame.line)}`));
      return;
    }
    request.frames.push(frame);
    const done = request.remaining === UNTIL_NOOP ? frame.code === 'MN' : --request.remaining === 0;
    if (!done) return;
    this.queue[this.head++] = undefined as unknown as Request;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.socket.unref();
      if (this.closing) this.shutDown();
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.events.onSuccess();
    request.resolve(request.frames);
  }

  /** Runs when the oldest request may have expired; re-arms for the next deadline otherwise. */
  private checkDeadline(): void {
    this.timer = undefined;
    const oldest = this.queue[this.head];
    if (oldest === undefined) return;
    const left = oldest.deadline - performance.now();
    if (left > 0) {
      this.timer = setTimeout(() => this.checkDeadline(), left + 1).unref();
      return;
    }
    this.fail(new Error(`no answer within ${this.timeoutMs} ms; connection discarded`));
  }

  private shutDown(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dead ??= new Error('connection closed');
    this.socket.end();
  }

  private fail(error: Error, report = true): void {
    if (this.dead !== undefined) return;
    this.dead = error;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.destroy();
    const pending = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.outgoing = [];
    if (report && pending.length > 0) this.events.onFailure(this, error);
    for (const request of pending) request.reject(error);
  }
}
