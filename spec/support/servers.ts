/**
 * Real servers for the backend specs: redis-server and memcached started as child processes on
 * free loopback ports, with the faults the specs need (kill, hang, restart). Never 6379/11211,
 * so a developer's own servers are never touched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const HOST = '127.0.0.1';
const READY_WITHIN_MS = 10_000;
const START_ATTEMPTS = 5;

/** A server process owned by the specs. */
export interface ManagedServer {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:port` */
  readonly address: string;
  /** PID of the current process (changes on restart). */
  readonly pid: number;
  /** Kills the server (SIGKILL), waits for its exit and removes its files. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) and waits for its exit, keeping it restartable: an outage. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open but answers nothing, like a hung host. Settles once it has stopped. */
  pause(): Promise<void>;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Starts the server again on the same port (killing it first if it runs) and waits until it answers. */
  restart(): Promise<void>;
}

export interface RedisServer extends ManagedServer {
  /** `redis://127.0.0.1:port` */
  readonly url: string;
}

export interface ServerOptions {
  /** Extra command-line arguments, e.g. `['-I', '2m']` for memcached or `['--maxmemory', '10mb']` for redis. */
  args?: string[];
}

export interface RedisClusterServers {
  /** The masters, each a managed redis-server (kill/pause one for a partial outage). */
  readonly nodes: RedisServer[];
  /** `{ host, port }` of every master, what ioredis' `Cluster` takes as start-up nodes. */
  readonly startupNodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** Every live child and every data folder, so that a crashed or interrupted run leaves nothing behind. */
const running = new Set<ChildProcess>();
const folders = new Set<string>();

function killAllNow(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}

process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllNow();
    // Listening to a signal cancels Node's default exit; restore it when nobody else handles it.
    if (process.listenerCount(signal) === 1) process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/** A port nobody listens on right now (the servers refuse port 0, so ask the kernel for one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Sends one request on a fresh connection and resolves with the reply once `complete` accepts
 * it; rejects on a connection error or after `timeoutMs`.
 */
export function ask(port: number, request: string, complete: (reply: string) => boolean, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply);
    };
    const timer = setTimeout(() => finish(new Error(`no complete reply from ${HOST}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', finish);
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (complete(reply)) finish();
    });
    socket.write(request);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A `/proc/<pid>/task/<tid>/stat` line's state is T (stopped) or t (traced); the name before it may hold spaces and parentheses. */
function isStopped(stat: string): boolean {
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state === 'T' || state === 't';
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

interface Flavour {
  binary: string;
  args(port: number, dir: string): string[];
  /** The request that answers only when the server is ready, and how its reply starts. */
  probe: string;
  answer: string;
}

const redisFlavour: Flavour = {
  binary: 'redis-server',
  args: (port, dir) => ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir],
  probe: 'PING\r\n',
  answer: '+PONG',
};

const memcachedFlavour: Flavour = {
  binary: 'memcached',
  args: (port) => ['-p', String(port), '-l', HOST, '-U', '0', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])],
  probe: 'version\r\n',
  answer: 'VERSION ',
};

class ServerProcess implements RedisServer {
  readonly host = HOST;
  private child!: ChildProcess;
  private output = '';

  constructor(
    private readonly flavour: Flavour,
    readonly port: number,
    private readonly dir: string,
    private readonly extraArgs: string[],
  ) {
    folders.add(dir);
  }

  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get url(): string {
    return `redis://${this.address}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Spawns the server and waits until it answers; rejects when it exits first (port taken). */
  async start(): Promise<void> {
    this.output = '';
    const child = spawn(this.flavour.binary, [...this.flavour.args(this.port, this.dir), ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    // Keep the last output for the error message; do not let the pipes hold the test process open.
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (this.output = (this.output + chunk).slice(-2000)));
      (stream as unknown as { unref(): void }).unref();
    }
    child.unref();
    const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
    spawnFailed.catch(() => undefined);
    await Promise.race([this.waitUntilReady(child), spawnFailed]);
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      if (exited(child)) {
        throw new Error(`${this.flavour.binary} on port ${this.port} exited during start-up: ${this.output.trim()}`);
      }
      try {
        await ask(this.port, this.flavour.probe, (reply) => reply.includes('\r\n'), 500).then((reply) => {
          if (!reply.startsWith(this.flavour.answer)) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
        });
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          await this.kill();
          throw new Error(`${this.flavour.binary} on port ${this.port} not ready within ${READY_WITHIN_MS} ms`, { cause: error });
        }
        await sleep(10);
      }
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (exited(child)) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    // The child is unref'd so it never holds a process open; waiting for its exit must, or a
    // process with nothing else to do (the end of `npm run bench`) ends before the exit arrives.
    child.ref();
    child.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    folders.delete(this.dir);
  }

  async pause(): Promise<void> {
    this.child.kill('SIGSTOP');
    // The signal reaches each thread on its way back from the kernel, not with kill() itself: a
    // request sent before then could still be answered. Wait until every thread shows as stopped.
    const tasks = `/proc/${this.child.pid}/task`;
    const deadline = Date.now() + READY_WITHIN_MS;
    while (!readdirSync(tasks).every((task) => isStopped(readFileSync(`${tasks}/${task}/stat`, 'utf8')))) {
      if (Date.now() > deadline) throw new Error(`${this.flavour.binary} on port ${this.port} did not stop within ${READY_WITHIN_MS} ms`);
      await sleep(1);
    }
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  async restart(): Promise<void> {
    await this.kill();
    // The port may linger briefly in the kernel after the kill; retry rather than fail the spec.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (error) {
        if (attempt >= START_ATTEMPTS) throw error;
        await sleep(50 * attempt);
      }
    }
  }
}

/** Starts a server on a free port, trying another port when the chosen one was taken meanwhile. */
async function startOn(flavour: Flavour, options: ServerOptions, pickArgs: () => Promise<string[]> = async () => []): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), `hoard-${flavour.binary}-`));
    const server = new ServerProcess(flavour, await freePort(), dir, [...(await pickArgs()), ...(options.args ?? [])]);
    try {
      await server.start();
      return server;
    } catch (error) {
      await server.stop();
      if (attempt >= START_ATTEMPTS) throw error;
    }
  }
}

/** A fresh redis-server with persistence off and its own temporary `--dir`. */
export function startRedis(options: ServerOptions = {}): Promise<RedisServer> {
  return startOn(redisFlavour, options);
}

/** A fresh memcached listening on 127.0.0.1 only (UDP off). */
export function startMemcached(options: ServerOptions = {}): Promise<ManagedServer> {
  return startOn(memcachedFlavour, options);
}

const clusterInfo = (port: number) =>
  ask(port, 'CLUSTER INFO\r\n', (reply) => /cluster_known_nodes:\d+\r\n/.test(reply) && reply.endsWith('\r\n'));

/**
 * A Redis Cluster of `masters` masters without replicas. Each node gets its own cluster bus port
 * (`--cluster-port`) so that `port + 10000` never has to be free or below 65536.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterServers> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startOn(redisFlavour, {}, async () => [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(await freePort()),
        ]),
      );
    }
    await promisify(execFile)('redis-cli', [
      '--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', '0', '--cluster-yes',
    ]);
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      const infos = await Promise.all(nodes.map((node) => clusterInfo(node.port)));
      const agreed = infos.every(
        (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}\r\n`),
      );
      if (agreed) break;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ok within ${READY_WITHIN_MS} ms:\n${infos.join('\n')}`);
      await sleep(50);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, startupNodes: nodes.map(({ host, port }) => ({ host, port })), stop };
}
