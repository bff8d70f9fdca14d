/**
 * Where a Redis Streams event's CPU goes: per process (publisher, subscriber, redis-server) and per Redis
 * command (INFO commandstats), for ours and the raw node-redis references, three runs each. Run with
 * `npm run bench:redis-cost -- [kinds] [events]` (kinds comma-separated, default ours-redis,raw-ce-redis).
 */
import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { NatsServer } from '../test/support/nats-server.js';
import { RedisServer } from '../test/support/redis-server.js';
import { CrossProcessRig } from './cross-process.js';
import type { Kind } from './worker.js';

const kinds = (process.argv[2] ?? 'ours-redis,raw-ce-redis').split(',') as Kind[];
const events = Number(process.argv[3] ?? 30_000);
const RUNS = 3;

/** User + system CPU of a process so far, in µs (from /proc: clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** µs per event and calls of each command Redis ran since its stats were reset. */
async function commandCosts(admin: { sendCommand(args: string[]): Promise<unknown> }): Promise<string> {
  const info = String(await admin.sendCommand(['INFO', 'commandstats']));
  const costs: string[] = [];
  for (const line of info.split('\r\n')) {
    const m = /^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m && !m[1].startsWith('config')) costs.push(`${m[1]} ${(Number(m[3]) / events).toFixed(2)} (${m[2]} calls)`);
  }
  return costs.join(', ');
}

const redis = await RedisServer.start({ appendfsync: 'everysec' });
const nats = await NatsServer.start();
const redisPid = (redis as unknown as { process: { pid: number } }).process.pid;
const admin = createClient({ url: redis.url });
await admin.connect();
try {
  for (const kind of kinds) {
    const rig = await CrossProcessRig.start(kind, { nats: nats.url, redis: redis.url, rabbitmq: '' });
    await rig.run({ cmd: 'burst', count: 2_000 }); // warm-up
    for (let run = 0; run < RUNS; run++) {
      await admin.sendCommand(['CONFIG', 'RESETSTAT']);
      const before = cpuUs(redisPid);
      const d = await rig.run({ cmd: 'burst', count: events });
      const server = (cpuUs(redisPid) - before) / events;
      console.log(
        `${kind}: ${Math.round(d.publishedPerSecond)}/s published, ${Math.round(d.eventsPerSecond)}/s consumed; CPU µs per event: ` +
          `publisher ${d.publisherCpuUs.toFixed(1)}, subscriber ${d.subscriberCpuUs.toFixed(1)}, redis-server ${server.toFixed(1)}; ` +
          `per command, µs per event: ${await commandCosts(admin)}`,
      );
    }
    await rig.stop();
  }
} finally {
  await admin.quit();
  await Promise.all([redis.dispose(), nats.dispose()]);
}
