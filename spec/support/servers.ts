/**
 * Real servers for the backend specs: redis-server and memcached started as child processes on
 * free loopback ports, with the faults the specs need (kill, hang, restart). Never 6379/11211,
 * so a developer's own servers are never touched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

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
export function ask(
  port: number,
  request: string,
  complete: (reply: string) => boolean,
  timeoutMs = 1000,
  open: (port: number) => Socket = (to) => connect({ host: HOST, port: to }),
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = open(port);
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
  /** How the probe connects; plain TCP when absent. */
  open?: (port: number) => Socket;
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
        await ask(this.port, this.flavour.probe, (reply) => reply.includes('\r\n'), 500, this.flavour.open).then((reply) => {
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
      if (Date.now() > deadline)
        throw new Error(`${this.flavour.binary} on port ${this.port} did not stop within ${READY_WITHIN_MS} ms`);
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
async function startOn(
  flavour: Flavour,
  options: ServerOptions,
  pickArgs: () => Promise<string[]> = async () => [],
): Promise<ServerProcess> {
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

/** A certificate authority and a server certificate it signed, as PEM files in a temporary folder. */
export interface Certificates {
  /** The folder holding `ca.crt`, `server.crt`, `server.key` (removed when the process exits). */
  readonly dir: string;
  /** The CA's certificate (PEM): what a client must trust (`tls: { ca }`). */
  readonly ca: Buffer;
}

/** Makes a fresh CA and a server certificate for 127.0.0.1/localhost with `openssl` (EC P-256, valid one day). */
export async function makeCertificates(): Promise<Certificates> {
  const dir = mkdtempSync(join(tmpdir(), 'hoard-tls-'));
  folders.add(dir);
  const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=hoard test CA');
  await openssl('req', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-extfile',
    'san.cnf',
  );
  return { dir, ca: readFileSync(join(dir, 'ca.crt')) };
}

export interface RedisTlsServer extends RedisServer {
  /** `rediss://127.0.0.1:port` */
  readonly tlsUrl: string;
  readonly certificates: Certificates;
}

/**
 * A redis-server that speaks TLS only (`--tls-port`, `--port 0`), with a certificate signed by a
 * CA made for it (see {@link makeCertificates}); clients need not present one.
 */
export async function startRedisTls(options: ServerOptions = {}): Promise<RedisTlsServer> {
  const certificates = await makeCertificates();
  const file = (name: string) => join(certificates.dir, name);
  const flavour: Flavour = {
    ...redisFlavour,
    args: (port, dir) => [
      ...redisFlavour.args(0, dir),
      '--tls-port',
      String(port),
      '--tls-cert-file',
      file('server.crt'),
      '--tls-key-file',
      file('server.key'),
      '--tls-ca-cert-file',
      file('ca.crt'),
      '--tls-auth-clients',
      'no',
    ],
    open: (port) => connectTls({ host: HOST, port, ca: certificates.ca }),
  };
  const server = await startOn(flavour, options);
  return Object.assign(server, { tlsUrl: `rediss://${server.address}`, certificates });
}

export interface RedisSentinelServers {
  /** The name the sentinels monitor the master under (ioredis' `name`). */
  readonly name: string;
  /** The first master, then its replica: after a failover the replica is the master. */
  readonly nodes: RedisServer[];
  readonly sentinels: RedisServer[];
  /** `{ host, port }` of every sentinel, what ioredis' `sentinels` option takes. */
  readonly sentinelAddresses: { host: string; port: number }[];
  /**
   * The node every sentinel names as master. While they disagree (in the moments after a
   * promotion, before the others have heard of it) it asks again, so a caller never acts on
   * one sentinel's view that a client asking another would not share.
   */
  master(): Promise<RedisServer>;
  /** `SENTINEL FAILOVER`: the replica becomes master, the master its replica; settles once the sentinels say so. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

const sentinelFlavour = (name: string, masterPort: number): Flavour => ({
  ...redisFlavour,
  args: (port, dir) => {
    // A sentinel rewrites its configuration file, so each gets its own in its own folder.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        `sentinel monitor ${name} ${HOST} ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    return [conf, '--sentinel'];
  },
});

/** Runs one command on a fresh connection (plain RESP2 replies, no retries). */
async function command(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    protocol: 2,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** `SENTINEL MASTER name` as an object of its fields. */
async function sentinelState(port: number, name: string): Promise<Record<string, string>> {
  const fields = (await command(port, 'SENTINEL', 'MASTER', name)) as string[];
  return Object.fromEntries(fields.flatMap((field, at) => (at % 2 === 0 ? [[field, fields[at + 1]]] : [])));
}

/**
 * One master, one replica and three sentinels (quorum 2, a node is down after 1 s), each a
 * redis-server on a free loopback port; the sentinels run the same binary (`--sentinel`).
 * Resolves once every sentinel knows the replica and the other two sentinels.
 */
export async function startRedisSentinel(name = 'hoard-master'): Promise<RedisSentinelServers> {
  const nodes: RedisServer[] = [];
  const sentinels: RedisServer[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes].map((server) => server.stop()));
  };
  try {
    // A full sync waits 5 s (redis' default) for more replicas to share it: most of the group's
    // start-up, and of a restarted node's return as a replica, without this.
    const noSyncDelay = ['--repl-diskless-sync-delay', '0'];
    const master = await startRedis({ args: noSyncDelay });
    nodes.push(master);
    nodes.push(await startRedis({ args: [...noSyncDelay, '--replicaof', HOST, String(master.port)] }));
    for (let i = 0; i < 3; i++) sentinels.push(await startOn(sentinelFlavour(name, master.port), {}));
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      const states = await Promise.all(sentinels.map((sentinel) => sentinelState(sentinel.port, name)));
      const synced = String(await command(nodes[1]!.port, 'INFO', 'replication')).includes('master_link_status:up');
      const ready = synced && states.every((state) => state['num-slaves'] === '1' && state['num-other-sentinels'] === '2');
      if (ready) break;
      if (Date.now() > deadline)
        throw new Error(`Redis Sentinel not ready within ${READY_WITHIN_MS} ms: ${JSON.stringify(states)}`);
      await sleep(100);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const servers: RedisSentinelServers = {
    name,
    nodes,
    sentinels,
    sentinelAddresses: sentinels.map(({ host, port }) => ({ host, port })),
    async failover() {
      const before = await servers.master();
      await command(sentinels[0]!.port, 'SENTINEL', 'FAILOVER', name);
      const deadline = Date.now() + READY_WITHIN_MS;
      while ((await servers.master()) === before) {
        if (Date.now() > deadline) throw new Error(`no failover within ${READY_WITHIN_MS} ms`);
        await sleep(50);
      }
    },
    async master() {
      const deadline = Date.now() + READY_WITHIN_MS;
      for (;;) {
        const replies = await Promise.all(
          sentinels.map(
            (sentinel) => command(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<[string, string]>,
          ),
        );
        const ports = new Set(replies.map(([, port]) => Number(port)));
        if (ports.size === 1) {
          const [port] = ports;
          const found = nodes.find((node) => node.port === port);
          if (found === undefined) throw new Error(`the sentinels name an unknown master: port ${port}`);
          return found;
        }
        if (Date.now() > deadline) throw new Error(`the sentinels still name different masters: ports ${[...ports].join(', ')}`);
        await sleep(20);
      }
    },
    stop,
  };
  return servers;
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
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-port',
          String(await freePort()),
        ]),
      );
    }
    await promisify(execFile)('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((node) => node.address),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
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
