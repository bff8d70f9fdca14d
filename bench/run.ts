import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '../test/support/nats-server.js';
import { RedisServer } from '../test/support/redis-server.js';
import { RabbitMqServer } from '../test/support/rabbitmq-server.js';
import { CrossProcessRig, type BrokerUrls, type Delivery } from './cross-process.js';
import { InProcessTarget, memoryAfter, type InProcessBus } from './in-process.js';
import { median, medianOf } from './stats.js';
import { JETSTREAM_WINDOW } from './bench-event.js';
import type { Kind } from './worker.js';
import { outboxScenario, type OutboxFigures } from './outbox.js';

/**
 * `npm run bench` (quick, a few minutes at most) or `npm run bench -- --long`: every scenario, ours beside
 * its references measured in the same run, each figure the median of several runs; each ratio with a
 * target is marked ✔ or ✘. Prints one table and writes it as JSON to bench/results/latest.json.
 * `-- --only=3,8` runs those scenarios only (10: the outbox, 11: RabbitMQ) (and writes bench/results/latest-only.json);
 * `-- --in-process` runs scenarios 1 and 2 without any server and writes nothing.
 */
const long = process.argv.includes('--long');
const inProcessOnly = process.argv.includes('--in-process');
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (scenario: number) => !only || only.includes(String(scenario));
const RUNS = process.env.BENCH_RUNS ? Number(process.env.BENCH_RUNS) : long ? 5 : 3;
const IN_PROCESS_BURSTS = [1_000, 100_000, 1_000_000];
/** In-process events/s every burst size should reach (issue #10, set on this machine when it ran 4M). */
const FLAT_TARGET = 3_000_000;
const CQRS_MAX_BURST = long ? 1_000_000 : 100_000; // the plain CQRS bus slows down sharply with burst size
const CROSS_PROCESS_EVENTS = long ? 500_000 : 100_000;
const FAN_OUT_EVENTS = long ? 200_000 : 50_000;
const RATE_SECONDS = long ? 10 : 2;
const JETSTREAM_EVENTS = long ? 200_000 : 30_000;
const REDIS_EVENTS = long ? 200_000 : 30_000;
const RABBITMQ_EVENTS = long ? 100_000 : 20_000;
const OUTBOX_BACKLOG = long ? 200_000 : 50_000;
const OUTBOX_TRANSACTIONS = long ? 5_000 : 1_000;

/** What ours / reference should be: at least (throughput) or at most (latency). */
type Target = { atLeast: number } | { atMost: number };

interface Row {
  scenario: string;
  metric: string;
  ours: number;
  reference?: string;
  referenceValue?: number;
  /** ours / reference */
  ratio?: number;
  target?: Target;
}

const rows: Row[] = [];
const add = (scenario: string, metric: string, ours: number, reference?: string, referenceValue?: number, target?: Target) =>
  rows.push({ scenario, metric, ours, reference, referenceValue, ratio: referenceValue ? ours / referenceValue : undefined, target });

function verdict({ ratio, target }: Row): string {
  if (!target || ratio === undefined) return '';
  const [met, bound] = 'atLeast' in target ? [ratio >= target.atLeast, `≥ ${target.atLeast}x`] : [ratio <= target.atMost, `≤ ${target.atMost}x`];
  return `${met ? '✔' : '✘'} ${bound}`;
}

async function inProcess(): Promise<void> {
  const results = new Map<string, number>();
  // The interceptor's garbage slows whatever runs next in the process: it goes last, and each bus starts after a GC.
  for (const bus of ['ours', 'ours-filtered', 'event-emitter', 'cqrs', 'ours-intercepted'] as InProcessBus[]) {
    global.gc?.();
    const target = await InProcessTarget.start(bus);
    await target.burst(10_000); // warm-up
    for (const n of IN_PROCESS_BURSTS) {
      if ((bus === 'cqrs' && n > CQRS_MAX_BURST) || (bus.startsWith('ours-') && n !== 100_000)) continue;
      results.set(`${bus}/${n}`, await medianOf(RUNS, () => target.burst(n)));
    }
    await target.close();
  }
  const ours100k = results.get('ours/100000')!;
  add('1. in-process dispatch (memory transport)', 'events/s, 100k burst', ours100k, '@nestjs/event-emitter', results.get('event-emitter/100000'));
  add('1. in-process dispatch (memory transport)', 'events/s, 100k burst', ours100k, '@nestjs/cqrs EventBus', results.get('cqrs/100000'));
  const enhanced = '1. in-process dispatch (memory transport)';
  add(enhanced, 'events/s, 100k burst, handler behind an interceptor', results.get('ours-intercepted/100000')!, 'ours, no enhancers (called directly)', ours100k);
  add(enhanced, 'events/s, 100k burst, handler behind an exception filter', results.get('ours-filtered/100000')!, 'ours, no enhancers (called directly)', ours100k);
  for (const n of IN_PROCESS_BURSTS) {
    const label = `events/s, burst of ${n.toLocaleString('en')}`;
    add('2. burst linearity', label, results.get(`ours/${n}`)!, '@nestjs/event-emitter', results.get(`event-emitter/${n}`), n === 1_000 ? { atLeast: 1 } : undefined);
    add('2. burst linearity', label, results.get(`ours/${n}`)!, '@nestjs/cqrs EventBus', results.get(`cqrs/${n}`));
  }
  const slowest = Math.min(...IN_PROCESS_BURSTS.map((n) => results.get(`ours/${n}`)!));
  add('2. burst linearity', 'events/s, the slowest of the bursts (flat from 1k to 1M)', slowest, 'the target, 3M events/s', FLAT_TARGET, { atLeast: 1 });
}

/** Runs of each kind, interleaved (ours, reference, ours, …) so that the load of a shared machine drifting affects both alike. */
type Deliveries = (kinds: Kind[], subscribers: number, command: Parameters<CrossProcessRig['run']>[0]) => Promise<Delivery[][]>;

function rigs(urls: BrokerUrls): Deliveries {
  return async (kinds, subscribers, command) => {
    const started: CrossProcessRig[] = [];
    try {
      for (const kind of kinds) {
        const rig = await CrossProcessRig.start(kind, urls, subscribers);
        started.push(rig);
        await rig.run({ cmd: 'burst', count: 5_000 }); // warm-up
      }
      const runs: Delivery[][] = kinds.map(() => []);
      for (let i = 0; i < RUNS; i++) for (const [k, rig] of started.entries()) runs[k].push(await rig.run(command));
      return runs;
    } finally {
      await Promise.all(started.map((rig) => rig.stop()));
    }
  };
}

const med = (runs: Delivery[], key: keyof Delivery) => median(runs.map((r) => r[key]));

/** The references on core NATS: the same CloudEvent JSON sent by hand (what the targets are set against), and the bare event. */
const RAW_CE = 'raw nats.js + the same CloudEvent JSON';
const RAW = 'raw nats.js + the bare event JSON';

/** One figure of ours beside both core NATS references; the target is against the same CloudEvent JSON. */
const addBesideRaw = (scenario: string, metric: string, ours: number, rawCe: number, raw: number, target?: Target) => {
  add(scenario, metric, ours, RAW_CE, rawCe, target);
  add(scenario, metric, ours, RAW, raw);
};

async function coreNats(deliveries: Deliveries): Promise<void> {
  if (wanted(3)) {
    const burst = { cmd: 'burst', count: CROSS_PROCESS_EVENTS } as const;
    const [ours, rawCe, raw, microservices, binary] = await deliveries(['ours', 'raw-ce', 'raw', 'microservices', 'ours-binary'], 1, burst);
    if (med(ours, 'rebuilt') !== CROSS_PROCESS_EVENTS || med(binary, 'rebuilt') !== CROSS_PROCESS_EVENTS) throw new Error('ours: events did not arrive as class instances');
    const oursRate = med(ours, 'eventsPerSecond');
    const scenario3 = '3. across processes, core NATS';
    addBesideRaw(scenario3, 'events/s received and rebuilt', oursRate, med(rawCe, 'eventsPerSecond'), med(raw, 'eventsPerSecond'), { atLeast: 0.9 });
    add(scenario3, 'events/s received and rebuilt', oursRate, '@nestjs/microservices NATS', med(microservices, 'eventsPerSecond'), { atLeast: 5 });
    add(scenario3, 'events/s, CloudEvents binary mode (ce- headers)', med(binary, 'eventsPerSecond'), 'ours, structured mode', oursRate);
  }

  if (wanted(8)) {
    const [oursAwaited, rawCeAwaited, rawAwaited] = await deliveries(['ours', 'raw-ce', 'raw'], 1, { cmd: 'awaited', count: CROSS_PROCESS_EVENTS });
    addBesideRaw('8. awaited publish loop across processes, core NATS', 'events/s received and rebuilt', med(oursAwaited, 'eventsPerSecond'),
      med(rawCeAwaited, 'eventsPerSecond'), med(rawAwaited, 'eventsPerSecond'), { atLeast: 0.8 });
  }

  for (const perSecond of wanted(4) ? [1_000, 10_000] : []) {
    const [o, rCe, r] = await deliveries(['ours', 'raw-ce', 'raw'], 1, { cmd: 'rate', perSecond, seconds: RATE_SECONDS });
    const targets = { p50Ms: { atMost: 1.2 }, p99Ms: { atMost: 1.5 }, maxMs: undefined };
    for (const key of ['p50Ms', 'p99Ms', 'maxMs'] as const) {
      addBesideRaw(`4. latency at ${perSecond.toLocaleString('en')}/s (lower is better)`, `${key.replace('Ms', '')} ms`, med(o, key), med(rCe, key), med(r, key), targets[key]);
    }
  }

  if (wanted(5)) {
    const [oursFanOut, rawCeFanOut, rawFanOut] = await deliveries(['ours', 'raw-ce', 'raw'], 4, { cmd: 'burst', count: FAN_OUT_EVENTS });
    addBesideRaw('5. fan-out, 1 publisher to 4 subscribers', 'events/s at the slowest subscriber', med(oursFanOut, 'eventsPerSecond'),
      med(rawCeFanOut, 'eventsPerSecond'), med(rawFanOut, 'eventsPerSecond'), { atLeast: 0.9 });
  }
}

/** A raw client a durable scenario compares with; `target`: the one the target is set against. */
interface Reference {
  readonly kind: Kind;
  readonly name: string;
  readonly target?: true;
}

/** Publishing with acknowledgements and consuming as a group with an ack per event, ours beside raw clients, the same window in flight. */
async function durable(deliveries: Deliveries, scenario: string, ours: Kind, references: Reference[], events: number, atLeast: number): Promise<void> {
  const [o, ...raws] = await deliveries([ours, ...references.map((r) => r.kind)], 1, { cmd: 'burst', count: events });
  for (const key of ['publishedPerSecond', 'eventsPerSecond'] as const) {
    const metric = key === 'publishedPerSecond' ? 'events/s published and acknowledged' : 'events/s consumed by a group (acked)';
    for (const [i, { name, target }] of references.entries()) add(scenario, metric, med(o, key), name, med(raws[i], key), target && { atLeast });
  }
}

async function memory(): Promise<void> {
  const m = await memoryAfter(1_000_000);
  add('6. memory, 1M events through one instance', 'RSS MB before', m.rssBeforeMb);
  add('6. memory, 1M events through one instance', 'RSS MB peak', m.rssPeakMb);
  add('6. memory, 1M events through one instance', 'RSS MB after GC', m.rssAfterGcMb);
  add('6. memory, 1M events through one instance', 'heap MB before', m.heapBeforeMb);
  add('6. memory, 1M events through one instance', 'heap MB after GC', m.heapAfterMb);
}

async function outbox(natsUrl: string): Promise<void> {
  const runs: OutboxFigures[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await outboxScenario(natsUrl, OUTBOX_BACKLOG, OUTBOX_TRANSACTIONS));
  const med = (key: keyof OutboxFigures) => median(runs.map((r) => r[key]));
  add('10. transactional outbox (PostgreSQL, fsync on)', `relay to JetStream, events/s from a ${OUTBOX_BACKLOG.toLocaleString('en')} backlog`, med('relayPerSecond'));
  add('10. transactional outbox (PostgreSQL, fsync on)', 'ms per transaction of one insert, with one outbox row', med('withOutboxTxMs'), 'the same without the outbox row', med('plainTxMs'));
}

function format(value: number | undefined): string {
  if (value === undefined) return '';
  if (value >= 1000) return Math.round(value).toLocaleString('en');
  return value >= 10 ? value.toFixed(0) : value.toFixed(2);
}

const started = Date.now();
if (inProcessOnly) await inProcess();
else {
  const confDir = join(tmpdir(), `bench-nats-${process.pid}`);
  mkdirSync(confDir, { recursive: true });
  // Subscribers that fall behind a fast publisher for a moment must not be cut off as slow consumers.
  writeFileSync(join(confDir, 'nats.conf'), 'max_pending: 1073741824\n');
  const server = await NatsServer.start(['-c', join(confDir, 'nats.conf')]);
  // Redis's default for an append-only file: an fsync per write would measure the disk (about 3k writes/s here), not the clients.
  const redis = await RedisServer.start({ appendfsync: 'everysec' });
  // A RabbitMQ node takes seconds to boot: started only when its scenario runs.
  const rabbitmq = wanted(11) ? await RabbitMqServer.start() : undefined;
  const deliveries = rigs({ nats: server.url, redis: redis.url, rabbitmq: rabbitmq?.url ?? '' });
  try {
    if (wanted(6)) await memory(); // first, so that no other scenario's garbage is in the figures
    if (wanted(1) || wanted(2)) await inProcess();
    await coreNats(deliveries);
    if (wanted(7)) {
      // As on core NATS: the target against the same CloudEvent JSON sent by hand, the bare event beside it.
      const references: Reference[] = [
        { kind: 'raw-ce-jetstream', name: 'raw @nats-io/jetstream + the same CloudEvent JSON', target: true },
        { kind: 'raw-jetstream', name: 'raw @nats-io/jetstream + the bare event JSON' },
      ];
      await durable(deliveries, `7. JetStream, ${JETSTREAM_WINDOW} in flight`, 'ours-jetstream', references, JETSTREAM_EVENTS, 0.9);
    }
    if (wanted(9)) {
      const references: Reference[] = [
        { kind: 'raw-ce-redis', name: 'raw node-redis + the same CloudEvent JSON', target: true },
        { kind: 'raw-redis', name: 'raw node-redis + the bare event JSON' },
      ];
      await durable(deliveries, `9. Redis Streams, ${JETSTREAM_WINDOW} in flight`, 'ours-redis', references, REDIS_EVENTS, 0.7);
    }
    if (wanted(10)) await outbox(server.url);
    // Quorum queues, which fsync before they confirm: a confirmed publish survives a crash of the broker.
    if (rabbitmq) await durable(deliveries, `11. RabbitMQ, ${JETSTREAM_WINDOW} in flight`, 'ours-rabbitmq', [{ kind: 'raw-rabbitmq', name: 'raw rabbitmq-client', target: true }], RABBITMQ_EVENTS, 0.7);
  } finally {
    await Promise.all([server.dispose(), redis.dispose(), rabbitmq?.dispose()]);
  }
}

const machine = `${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const header = '| scenario | metric | ours | reference | reference value | ours / reference | target |';
const lines = [header, '| --- | --- | --- | --- | --- | --- | --- |'];
rows.sort((a, b) => parseInt(a.scenario, 10) - parseInt(b.scenario, 10)); // stable: within a scenario, in measuring order
for (const r of rows) lines.push(`| ${r.scenario} | ${r.metric} | ${format(r.ours)} | ${r.reference ?? ''} | ${format(r.referenceValue)} | ${r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`} | ${verdict(r)} |`);
console.log(`\n${machine}; ${long ? 'long' : 'quick'} run, median of ${RUNS}; ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(lines.join('\n'));
if (!inProcessOnly) {
  const resultsDir = new URL('../../bench/results/', import.meta.url).pathname;
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, only ? 'latest-only.json' : 'latest.json'), JSON.stringify({ machine, mode: long ? 'long' : 'quick', runs: RUNS, date: new Date().toISOString(), rows }, null, 2));
}
