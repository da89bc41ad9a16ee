// Two processes, each with a TieredBackend (memory in the process, Redis shared). Process A
// changes a price; with a RedisBus, process B drops its memory copy within milliseconds and
// reads the new price; without one, B serves its old copy until its l1Ttl runs out.
//   npm run example && REDIS_URL=redis://127.0.0.1:6379 node build/examples/tiered-bus/main.js
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command, Reply } from './protocol.js';

const worker = fileURLToPath(new URL('./worker.js', import.meta.url));

function start(name: string, mode: 'bus' | 'no-bus'): Promise<ChildProcess> {
  const child = fork(worker, [name, mode]);
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

function ask<R extends Reply>(child: ChildProcess, command: Command): Promise<R> {
  return new Promise((resolve) => {
    child.once('message', (reply: R) => resolve(reply));
    child.send(command);
  });
}

async function read(label: string, child: ChildProcess): Promise<void> {
  const { price, from } = await ask<Extract<Reply, { type: 'price' }>>(child, { type: 'read', item: 'apple' });
  console.log(`  ${label} price('apple') → ${price}  (from ${from})`);
}

async function scenario(mode: 'bus' | 'no-bus'): Promise<void> {
  console.log(mode === 'bus' ? 'With a RedisBus:' : 'Without a bus:');
  const [a, b] = await Promise.all([start('A', mode), start('B', mode)]);
  await ask(a, { type: 'seed', item: 'apple', price: 100 });

  await read('A', a);
  await read('B', b);
  await read('B', b);

  const watching = ask<Extract<Reply, { type: 'watched' }>>(b, { type: 'watch', item: 'apple', withinMs: 1000 });
  const writeStarted = Date.now();
  await ask(a, { type: 'write', item: 'apple', price: 120 });
  console.log(`  A setPrice('apple', 120)`);
  const { dropped, at } = await watching;
  console.log(
    dropped ? `  B dropped its copy ${at - writeStarted} ms after A's write began` : `  B still holds its copy 1000 ms later`,
  );

  await read('B', b);
  if (mode === 'no-bus')
    console.log("  (the old price: without a bus, B sees A's write only once its copy expires, l1Ttl = 10 s)");
  await Promise.all([ask(a, { type: 'close' }), ask(b, { type: 'close' })]);
  for (const child of [a, b]) child.disconnect();
}

await scenario('bus');
await scenario('no-bus');
