import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '../test/support/nats-server.js';
import { CrossProcessRig, type Delivery } from './cross-process.js';
import { InProcessTarget, memoryAfter, type InProcessBus } from './in-process.js';
import { median, medianOf } from './stats.js';
import { JETSTREAM_WINDOW } from './bench-event.js';
import type { Kind } from './worker.js';

/**
 * `npm run bench` (quick, a few minutes at most) or `npm run bench -- --long`: every scenario, ours beside
 * its references measured in the same run, each figure the median of several runs. Prints one table
 * and writes it as JSON to bench/results/latest.json.
 */
const long = process.argv.includes('--long');
/** `--only=7` (or `--only=3,7`): just those scenarios. */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const selected = (...scenarios: number[]) => !only || scenarios.some((n) => only.includes(String(n)));
const RUNS = long ? 5 : 3;
const IN_PROCESS_BURSTS = [1_000, 100_000, 1_000_000];
const CQRS_MAX_BURST = long ? 1_000_000 : 100_000; // the plain CQRS bus slows down sharply with burst size
const CROSS_PROCESS_EVENTS = long ? 500_000 : 100_000;
const FAN_OUT_EVENTS = long ? 200_000 : 50_000;
const RATE_SECONDS = long ? 10 : 2;
const JETSTREAM_EVENTS = long ? 200_000 : 30_000;

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

/** Runs of one cross-process rig, after a warm-up. */
async function deliveries(natsUrl: string, kind: Kind, subscribers: number, command: Parameters<CrossProcessRig['run']>[0]): Promise<Delivery[]> {
  const rig = await CrossProcessRig.start(kind, natsUrl, subscribers);
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

async function acrossProcesses(url: string): Promise<void> {
  const burst = { cmd: 'burst', count: CROSS_PROCESS_EVENTS } as const;
  const ours = await deliveries(url, 'ours', 1, burst);
  if (med(ours, 'rebuilt') !== CROSS_PROCESS_EVENTS) throw new Error('ours: events did not arrive as class instances');
  const oursRate = med(ours, 'eventsPerSecond');
  add('3. across processes, core NATS', 'events/s received and rebuilt', oursRate, 'raw nats.js + JSON', med(await deliveries(url, 'raw', 1, burst), 'eventsPerSecond'));
  add('3. across processes, core NATS', 'events/s received and rebuilt', oursRate, '@nestjs/microservices NATS', med(await deliveries(url, 'microservices', 1, burst), 'eventsPerSecond'));

  for (const perSecond of [1_000, 10_000]) {
    const rate = { cmd: 'rate', perSecond, seconds: RATE_SECONDS } as const;
    const [o, r] = [await deliveries(url, 'ours', 1, rate), await deliveries(url, 'raw', 1, rate)];
    for (const key of ['p50Ms', 'p99Ms', 'maxMs'] as const) {
      add(`4. latency at ${perSecond.toLocaleString('en')}/s (lower is better)`, `${key.replace('Ms', '')} ms`, med(o, key), 'raw nats.js + JSON', med(r, key));
    }
  }

  const fanOut = { cmd: 'burst', count: FAN_OUT_EVENTS } as const;
  add('5. fan-out, 1 publisher to 4 subscribers', 'events/s at the slowest subscriber', med(await deliveries(url, 'ours', 4, fanOut), 'eventsPerSecond'), 'raw nats.js + JSON', med(await deliveries(url, 'raw', 4, fanOut), 'eventsPerSecond'));
}

async function jetStream(url: string): Promise<void> {
  const durable = { cmd: 'burst', count: JETSTREAM_EVENTS } as const;
  const [oursJs, rawJs] = [await deliveries(url, 'ours-jetstream', 1, durable), await deliveries(url, 'raw-jetstream', 1, durable)];
  const jetstream = `7. JetStream, ${JETSTREAM_WINDOW} in flight`;
  add(jetstream, 'events/s published and acknowledged', med(oursJs, 'publishedPerSecond'), 'raw @nats-io/jetstream', med(rawJs, 'publishedPerSecond'));
  add(jetstream, 'events/s consumed by a group (acked)', med(oursJs, 'eventsPerSecond'), 'raw @nats-io/jetstream', med(rawJs, 'eventsPerSecond'));
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
try {
  if (selected(6)) await memory(); // first, so that no other scenario's garbage is in the figures
  if (selected(1, 2)) await inProcess();
  if (selected(3, 4, 5)) await acrossProcesses(server.url);
  if (selected(7)) await jetStream(server.url);
} finally {
  await server.dispose();
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
