/**
 * A real NestJS 11 application (express platform, legacy decorators) end to end over HTTP:
 * in-process through @nestjs/testing and supertest, and as child processes sharing a real
 * redis-server that the specs pause and kill.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { CacheModule, RedisBackend } from 'hoard';
import { getCacheBackendToken, HoardModule } from 'hoard/nestjs';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../support/servers.js';
import { createAppModule, RoleGuard, type AppSettings } from './app/app.module.js';

const main = fileURLToPath(new URL('./app/main.js', import.meta.url));

async function inProcess(settings: AppSettings): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [createAppModule(settings)] }).compile();
  return moduleRef.createNestApplication({ logger: false }).init();
}

/** A stand-in for a remote HTTP API (what HttpService calls), counting the requests it got. */
async function startUpstream(): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url!);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id: req.url!.split('/').pop(), price: 42 }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}`, requests };
}

/** The app as its own process: resolves once it listens. */
async function child(
  mode: 'serve' | 'two',
  redis: RedisServer,
  upstream = '',
): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  const proc = spawn(process.execPath, [main, mode, redis.url, upstream], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  if (mode === 'two') return { proc, url: '', output: () => output };
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', () => {
      const match = /listening (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    proc.once('exit', (code) => reject(new Error(`app exited with ${code}: ${output}`)));
  });
  return { proc, url: `http://127.0.0.1:${port}`, output: () => output };
}

/** Resolves with the exit code once the process exits, or fails after `ms`: something kept it alive. */
async function exitWithin(proc: ChildProcess, ms: number, output: () => string): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
  const [code, signal] = (await once(proc, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  expect(signal, `the process did not exit by itself within ${ms} ms: ${output()}`).to.equal(null);
  return code;
}

describe('a NestJS 11 application with hoard/nestjs [legacy decorators, express]', function () {
  this.timeout(60_000);

  describe('in-process, memory backend', () => {
    let app: INestApplication;
    beforeEach(async () => {
      CacheModule.reset();
      RoleGuard.checked = [];
      app = await inProcess({});
    });
    afterEach(() => app.close());

    it('serves the second request from the cache: the body ran once', async () => {
      const http = request(app.getHttpServer());
      await http.get('/cats/7').expect(200, { id: '7', name: 'cat 7' });
      await http.get('/cats/7').expect(200, { id: '7', name: 'cat 7' });
      await http.get('/cats/8').expect(200, { id: '8', name: 'cat 8' });
      await http.get('/cats/stats').expect(200, { computed: 2 });
    });

    it('evicts with @CacheEvict: the next request computes again', async () => {
      const http = request(app.getHttpServer());
      await http.get('/cats/7').expect(200);
      await http.delete('/cats/7').expect(200, { removed: '7' });
      await http.get('/cats/7').expect(200);
      await http.get('/cats/7').expect(200);
      await http.get('/cats/stats').expect(200, { computed: 2 });
    });

    it('@Cached above or below @Get, @UseGuards and @SetMetadata: the route, the guard and its metadata all work', async () => {
      const http = request(app.getHttpServer());
      for (const at of ['above', 'below']) {
        await http.get(`/order/${at}/1`).expect(200, { id: '1', at });
        await http.get(`/order/${at}/1`).expect(200, { id: '1', at });
      }
      await http.get('/order/closed').expect(403);
      expect(RoleGuard.checked).to.deep.equal(['reader', 'reader', 'reader', 'reader', 'nobody']);
      const { OrderController } = await import('./app/app.module.js');
      expect(app.get(OrderController).handled).to.equal(2);
    });
  });

  describe('on a real redis-server', () => {
    let redis: RedisServer;
    let upstream: Awaited<ReturnType<typeof startUpstream>>;
    const children: ChildProcess[] = [];

    before(async () => {
      [redis, upstream] = await Promise.all([startRedis(), startUpstream()]);
    });
    after(async () => {
      for (const proc of children) proc.kill('SIGKILL');
      upstream?.server.close();
      await redis?.stop();
    });

    it('HttpService: an Observable response is cached by its value in Redis; upstream asked once', async () => {
      CacheModule.reset();
      const app = await inProcess({ REDIS_URL: redis.url, UPSTREAM_URL: upstream.url });
      try {
        expect(app.get(getCacheBackendToken())).to.be.instanceOf(RedisBackend);
        const http = request(app.getHttpServer());
        await http.get('/cats/3/quote').expect(200, { id: '3', price: 42 });
        await http.get('/cats/3/quote').expect(200, { id: '3', price: 42 });
        expect(upstream.requests).to.deep.equal(['/quote/3']);
      } finally {
        await app.close();
      }
    });

    it('on shutdown closes the backends it was given, but never a client passed to one ready-made', async () => {
      CacheModule.reset();
      const client = new Redis(redis.url);
      const owned = new RedisBackend({ url: redis.url });
      const moduleRef = await Test.createTestingModule({
        imports: [HoardModule.forRoot({ backends: { default: new RedisBackend({ client }), owned } })],
      }).compile();
      const app = await moduleRef.createNestApplication({ logger: false }).init();
      await CacheModule.get('owned').set('probe', 1);
      await app.close();
      expect(await client.ping()).to.equal('PONG');
      await client.quit();
      expect(
        await owned.get('probe').then(
          () => 'answered',
          () => 'closed',
        ),
      ).to.equal('closed');
    });

    it('two app processes share the cache; each keeps answering when Redis hangs and when it dies; each exits by itself after app.close()', async () => {
      const a = await child('serve', redis, upstream.url);
      const b = await child('serve', redis, upstream.url);
      children.push(a.proc, b.proc);
      await request(a.url).get('/cats/1').expect(200, { id: '1', name: 'cat 1' });
      await request(b.url).get('/cats/1').expect(200, { id: '1', name: 'cat 1' });
      await request(b.url).get('/cats/stats').expect(200, { computed: 0 });

      await redis.pause();
      try {
        await request(a.url).get('/cats/2').expect(200, { id: '2', name: 'cat 2' });
        await request(b.url).get('/cats/1').expect(200, { id: '1', name: 'cat 1' });
      } finally {
        redis.resume();
      }
      await request(b.url).get('/cats/stats').expect(200, { computed: 1 });

      await redis.kill();
      await request(a.url).get('/cats/3').expect(200, { id: '3', name: 'cat 3' });
      await request(a.url).get('/cats/stats').expect(200, { computed: 3 });
      expect(a.output()).to.match(/hoard.*on backend 'default' for CatsService\.find failed/);

      a.proc.kill('SIGUSR2');
      expect(await exitWithin(a.proc, 10_000, a.output), a.output()).to.equal(0);
      expect(a.output()).to.include('closed');
      await redis.restart();
      b.proc.kill('SIGUSR2');
      expect(await exitWithin(b.proc, 10_000, b.output), b.output()).to.equal(0);
    });

    it('two applications in one process: closing A leaves B caching; both closed, the process exits by itself', async () => {
      const both = await child('two', redis);
      children.push(both.proc);
      expect(await exitWithin(both.proc, 20_000, both.output), both.output()).to.equal(0);
      const seen = JSON.parse(both.output().trim().split('\n').pop()!);
      expect(seen).to.deep.equal({ aComputed: 1, bComputed: 1, bStillRegistered: true });
    });
  });
});
