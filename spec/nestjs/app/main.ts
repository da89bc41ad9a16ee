/**
 * The app as a process of its own. `serve`: listens on a free port, prints `listening <port>`,
 * closes the app on SIGUSR2 (a signal listener keeps nothing alive, unlike reading stdin) and
 * then does nothing more: the process must exit by itself. `two`: two applications in this one process, each with its own
 * RedisBackend; closes A, checks that B still caches, closes B, and prints what it saw.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { CacheModule } from 'hoard';
import { getCacheBackendToken } from 'hoard/nestjs';
import { CatsService, createAppModule } from './app.module.js';

const [mode = 'serve', redisUrl, upstreamUrl] = process.argv.slice(2);

async function start(): Promise<INestApplication> {
  const app = await NestFactory.create(createAppModule({ REDIS_URL: redisUrl, UPSTREAM_URL: upstreamUrl }), {
    logger: ['error'],
  });
  await app.listen(0, '127.0.0.1');
  return app;
}

if (mode === 'serve') {
  const app = await start();
  const address = app.getHttpServer().address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
  process.once('SIGUSR2', async () => {
    await app.close();
    process.stdout.write('closed\n');
  });
} else {
  const a = await start();
  const b = await start();
  const cats = (app: INestApplication) => app.get(CatsService);
  await cats(a).find('two-a');
  await a.close();
  await cats(b).find('two-b');
  await cats(b).find('two-b');
  const seen = {
    aComputed: cats(a).computed,
    bComputed: cats(b).computed,
    bStillRegistered: CacheModule.get() === b.get(getCacheBackendToken()),
  };
  await b.close();
  process.stdout.write(`${JSON.stringify(seen)}\n`);
}
