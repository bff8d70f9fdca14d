import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '../test/support/nats-server.js';
import { RabbitMqServer } from '../test/support/rabbitmq-server.js';
import { CrossProcessRig, type BrokerUrls, type Delivery } from './cross-process.js';
import { InProcessTarget, memoryAfter, type InProcessBus } from './in-process.js';
import { median, medianOf } from './stats.js';
import { JETSTREAM_WINDOW } from './bench-event.js';
import type { Kind } from './worker.js';

/**
 * `npm run bench` (quick, a few minutes at most) or `npm run bench -- --long`: every scenario, ours beside
 * its references measured in the same run, each figure the median of several runs. Prints one table
 * and writes it as JSON to bench/results/latest.json. `-- --only=rabbitmq` (or `jetstream`) runs only that
 * transport's durable scenario.
 */
const long = process.argv.includes('--long');
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
const RUNS = long ? 5 : 3;
const IN_PROCESS_BURSTS = [1_000, 100_000, 1_000_000];
const CQRS_MAX_BURST = long ? 1_000_000 : 100_000; // the plain CQRS bus slows down sharply with burst size
const CROSS_PROCESS_EVENTS = long ? 500_000 : 100_000;
const FAN_OUT_EVENTS = long ? 200_000 : 50_000;
const RATE_SECONDS = long ? 10 : 2;
const JETSTREAM_EVENTS = long ? 200_000 : 30_000;
const RABBITMQ_EVENTS = long ? 100_000 : 20_000;

interface Row {
  scenario: string;
  metric: string;
  ours: number;
  reference?: string;
  referenceValue?: number;
  /** ours / reference */
  ratio?: number;
}

const rows: Row[] = [];
const add = (scenario: string, metric: string, ours: number, reference?: string, referenceValue?: number) =>
  rows.push({ scenario, metric, ours, reference, referenceValue, ratio: referenceValue ? ours / referenceValue : undefined });

async function inProcess(): Promise<void> {
  const results = new Map<string, number>();
  for (const bus of ['ours', 'event-emitter', 'cqrs'] as InProcessBus[]) {
    const target = await InProcessTarget.start(bus);
    await target.burst(10_000); // warm-up
    for (const n of IN_PROCESS_BURSTS) {
      if (bus === 'cqrs' && n > CQRS_MAX_BURST) continue;
      results.set(`${bus}/${n}`, await medianOf(RUNS, () => target.burst(n)));
    }
    await target.close();
  }
  const ours100k = results.get('ours/100000')!;
  add('1. in-process dispatch (memory transport)', 'events/s, 100k burst', ours100k, '@nestjs/event-emitter', results.get('event-emitter/100000'));
  add('1. in-process dispatch (memory transport)', 'events/s, 100k burst', ours100k, '@nestjs/cqrs EventBus', results.get('cqrs/100000'));
  for (const n of IN_PROCESS_BURSTS) {
    const label = `events/s, burst of ${n.toLocaleString('en')}`;
    add('2. burst linearity', label, results.get(`ours/${n}`)!, '@nestjs/event-emitter', results.get(`event-emitter/${n}`));
    add('2. burst linearity', label, results.get(`ours/${n}`)!, '@nestjs/cqrs EventBus', results.get(`cqrs/${n}`));
  }
}

/** A rig's runs of one command (after a warm-up), each a Delivery. */
async function deliveries(urls: BrokerUrls, kind: Kind, subscribers: number, command: Parameters<CrossProcessRig['run']>[0]): Promise<Delivery[]> {
  const rig = await CrossProcessRig.start(kind, urls, subscribers);
  try {
    await rig.run({ cmd: 'burst', count: 5_000 }); // warm-up
    const runs: Delivery[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await rig.run(command));
    return runs;
  } finally {
    await rig.stop();
  }
}

const med = (runs: Delivery[], key: keyof Delivery) => median(runs.map((r) => r[key]));

async function acrossProcesses(urls: BrokerUrls): Promise<void> {
  const burst = { cmd: 'burst', count: CROSS_PROCESS_EVENTS } as const;
  const ours = await deliveries(urls, 'ours', 1, burst);
  if (med(ours, 'rebuilt') !== CROSS_PROCESS_EVENTS) throw new Error('ours: events did not arrive as class instances');
  const oursRate = med(ours, 'eventsPerSecond');
  add('3. across processes, core NATS', 'events/s received and rebuilt', oursRate, 'raw nats.js + JSON', med(await deliveries(urls, 'raw', 1, burst), 'eventsPerSecond'));
  add('3. across processes, core NATS', 'events/s received and rebuilt', oursRate, '@nestjs/microservices NATS', med(await deliveries(urls, 'microservices', 1, burst), 'eventsPerSecond'));

  for (const perSecond of [1_000, 10_000]) {
    const rate = { cmd: 'rate', perSecond, seconds: RATE_SECONDS } as const;
    const [o, r] = [await deliveries(urls, 'ours', 1, rate), await deliveries(urls, 'raw', 1, rate)];
    for (const key of ['p50Ms', 'p99Ms', 'maxMs'] as const) {
      add(`4. latency at ${perSecond.toLocaleString('en')}/s (lower is better)`, `${key.replace('Ms', '')} ms`, med(o, key), 'raw nats.js + JSON', med(r, key));
    }
  }

  const fanOut = { cmd: 'burst', count: FAN_OUT_EVENTS } as const;
  add('5. fan-out, 1 publisher to 4 subscribers', 'events/s at the slowest subscriber', med(await deliveries(urls, 'ours', 4, fanOut), 'eventsPerSecond'), 'raw nats.js + JSON', med(await deliveries(urls, 'raw', 4, fanOut), 'eventsPerSecond'));
}

/**
 * Runs of several kinds' rigs, one run of each in turn, so that a load on the machine that changes over
 * time (other work, the broker's own housekeeping) falls on each alike.
 */
async function alternating(urls: BrokerUrls, kinds: Kind[], command: Parameters<CrossProcessRig['run']>[0]): Promise<Delivery[][]> {
  const rigs: CrossProcessRig[] = [];
  try {
    for (const kind of kinds) rigs.push(await CrossProcessRig.start(kind, urls, 1));
    for (const rig of rigs) await rig.run({ cmd: 'burst', count: 5_000 }); // warm-up
    const runs: Delivery[][] = kinds.map(() => []);
    for (let i = 0; i < RUNS; i++) for (const [k, rig] of rigs.entries()) runs[k].push(await rig.run(command));
    return runs;
  } finally {
    await Promise.all(rigs.map((rig) => rig.stop()));
  }
}

/** Publishing with acknowledgements and consuming as a group with an ack per event, ours beside the raw client, the same window in flight. */
async function durable(urls: BrokerUrls, scenario: string, ours: Kind, raw: Kind, reference: string, events: number): Promise<void> {
  const command = { cmd: 'burst', count: events } as const;
  const [o, r] = await alternating(urls, [ours, raw], command);
  add(scenario, 'events/s published and acknowledged', med(o, 'publishedPerSecond'), reference, med(r, 'publishedPerSecond'));
  add(scenario, 'events/s consumed by a group (acked)', med(o, 'eventsPerSecond'), reference, med(r, 'eventsPerSecond'));
}

async function memory(): Promise<void> {
  const m = await memoryAfter(1_000_000);
  add('6. memory, 1M events through one instance', 'RSS MB before', m.rssBeforeMb);
  add('6. memory, 1M events through one instance', 'RSS MB peak', m.rssPeakMb);
  add('6. memory, 1M events through one instance', 'RSS MB after GC', m.rssAfterGcMb);
  add('6. memory, 1M events through one instance', 'heap MB before', m.heapBeforeMb);
  add('6. memory, 1M events through one instance', 'heap MB after GC', m.heapAfterMb);
}

function format(value: number | undefined): string {
  if (value === undefined) return '';
  if (value >= 1000) return Math.round(value).toLocaleString('en');
  return value >= 10 ? value.toFixed(0) : value.toFixed(2);
}

const started = Date.now();
const confDir = join(tmpdir(), `bench-nats-${process.pid}`);
mkdirSync(confDir, { recursive: true });
// Subscribers that fall behind a fast publisher for a moment must not be cut off as slow consumers.
writeFileSync(join(confDir, 'nats.conf'), 'max_pending: 1073741824\n');
const server = await NatsServer.start(['-c', join(confDir, 'nats.conf')]);
const rabbitmq = await RabbitMqServer.start();
const urls: BrokerUrls = { nats: server.url, rabbitmq: rabbitmq.url };
try {
  if (!only) {
    await memory(); // first, so that no other scenario's garbage is in the figures
    await inProcess();
    await acrossProcesses(urls);
  }
  if (!only || only === 'jetstream') {
    await durable(urls, `7. JetStream, ${JETSTREAM_WINDOW} in flight`, 'ours-jetstream', 'raw-jetstream', 'raw @nats-io/jetstream', JETSTREAM_EVENTS);
  }
  if (!only || only === 'rabbitmq') {
    // Quorum queues, which fsync before they confirm: a confirmed publish survives a crash of the broker.
    await durable(urls, `9. RabbitMQ, ${JETSTREAM_WINDOW} in flight`, 'ours-rabbitmq', 'raw-rabbitmq', 'raw rabbitmq-client', RABBITMQ_EVENTS);
  }
} finally {
  await Promise.all([server.dispose(), rabbitmq.dispose()]);
}

const machine = `${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const header = '| scenario | metric | ours | reference | reference value | ours / reference |';
const lines = [header, '| --- | --- | --- | --- | --- | --- |'];
rows.sort((a, b) => parseInt(a.scenario, 10) - parseInt(b.scenario, 10)); // stable: within a scenario, in measuring order
for (const r of rows) lines.push(`| ${r.scenario} | ${r.metric} | ${format(r.ours)} | ${r.reference ?? ''} | ${format(r.referenceValue)} | ${r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`} |`);
console.log(`\n${machine}; ${long ? 'long' : 'quick'} run, median of ${RUNS}; ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(lines.join('\n'));
const resultsDir = new URL('../../bench/results/', import.meta.url).pathname;
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify({ machine, mode: long ? 'long' : 'quick', runs: RUNS, date: new Date().toISOString(), rows }, null, 2));
