import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { RedisServer } from '../test/support/redis-server.js';
import { NatsServer } from '../test/support/nats-server.js';
import { CrossProcessRig } from './cross-process.js';
import type { Kind } from './worker.js';

const cpuOf = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10_000; };
const kinds = (process.argv[2] ?? 'ours-redis,raw-ce-redis').split(',') as Kind[];
const count = Number(process.argv[3] ?? 30000);
const redis = await RedisServer.start({ appendfsync: 'everysec' });
const nats = await NatsServer.start();
const pid = (redis as unknown as { process: { pid: number } }).process.pid;
const admin = createClient({ url: redis.url }); await admin.connect();
for (const kind of kinds) {
  const rig = await CrossProcessRig.start(kind, { nats: nats.url, redis: redis.url, rabbitmq: '' });
  await rig.run({ cmd: 'burst', count: 2000 });
  for (let r = 0; r < 3; r++) {
    await admin.sendCommand(['CONFIG', 'RESETSTAT']);
    const before = cpuOf(pid);
    const d = await rig.run({ cmd: 'burst', count });
    const redisUs = (cpuOf(pid) - before) / count;
    const stats = String(await admin.sendCommand(['INFO', 'commandstats'])).split('\r\n').filter((l) => l.startsWith('cmdstat_')).map((l) => { const m = /cmdstat_(\w+(?:\|\w+)?):calls=(\d+),usec=(\d+)/.exec(l)!; return `${m[1]} ${(Number(m[3]) / count).toFixed(2)}µs/ev (${m[2]} calls)`; });
    console.log(`${kind}: pub ${Math.round(d.publishedPerSecond)}/s consume ${Math.round(d.eventsPerSecond)}/s | cpu µs/event pub ${d.publisherCpuUs.toFixed(1)} sub ${d.subscriberCpuUs.toFixed(1)} redis ${redisUs.toFixed(1)} | ${stats.join(', ')}`);
  }
  await rig.stop();
}
await admin.quit(); await redis.dispose(); await nats.dispose();
