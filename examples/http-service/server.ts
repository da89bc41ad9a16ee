// The service on Redis. Start Redis, then:
//   npm run example && REDIS_URL=redis://127.0.0.1:6379 PORT=3000 node build/examples/http-service/server.js
//   curl localhost:3000/reports/emea/2024      # ~300 ms the first time, then ~1 ms
//   curl -X POST 'localhost:3000/reports/emea/2024/sales?amount=500'
//   curl localhost:3000/stats
import { CacheModule, RedisBackend } from 'hoard';
import { createService } from './service.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const port = Number(process.env.PORT ?? 3000);

CacheModule.register(new RedisBackend({ url: redisUrl, prefix: 'example:' }));
// A cache fault never fails a request (the query just runs); log it so someone notices.
CacheModule.on('error', ({ operation, key, error }) => console.warn(`cache ${operation} ${key}: ${(error as Error).message}`));

const server = createService();
server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port} (cache: ${redisUrl})`));

// Graceful shutdown: stop accepting requests, then close the Redis connection.
process.once('SIGTERM', () => {
  server.close(() => void CacheModule.close().then(() => console.log('closed')));
});
