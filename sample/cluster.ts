import { SampleProcess } from './sample-process.js';

/**
 * `npm run sample:cluster`: two sample instances on NATS (NATS_URL, default nats://127.0.0.1:4222) or,
 * with EVENT_BUS_TRANSPORT=redis, on Redis Streams (REDIS_URL, default redis://127.0.0.1:6379), or with
 * EVENT_BUS_TRANSPORT=rabbitmq on RabbitMQ (RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672),
 * on ports 3001 and 3002 (or INSTANCES=n from BASE_PORT=3001). Ctrl-C stops them.
 */
const count = Number(process.env.INSTANCES ?? 2);
const basePort = Number(process.env.BASE_PORT ?? 3001);
const env = { EVENT_BUS_TRANSPORT: process.env.EVENT_BUS_TRANSPORT ?? 'nats' };
const instances = await Promise.all(
  Array.from({ length: count }, (_, i) => SampleProcess.start({ port: basePort + i, env, echo: `:${basePort + i}` })),
);
console.log(`\n${count} instances: ${instances.map((i) => `${i.url}/admin`).join('  ')}; players connect to ws://127.0.0.1:<port>/ws\n`);
const stop = () => void Promise.all(instances.map((i) => i.stop())).then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
