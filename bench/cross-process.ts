import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { percentile } from './stats.js';
import type { Command, Kind, Received } from './worker.js';

const WORKER = new URL('./worker.js', import.meta.url).pathname;

function spawnWorker(role: 'publisher' | 'subscriber', kind: Kind, urls: BrokerUrls): ChildProcess {
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`, `--cpu-prof-name=${role}-${kind}-${Date.now()}.cpuprofile`] : [];
  return fork(WORKER, [role, kind], { env: { ...process.env, NATS_URL: urls.nats, REDIS_URL: urls.redis, RABBITMQ_URL: urls.rabbitmq }, execArgv: profile, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: Record<string, T>) => {
      if (!(key in message)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message[key]);
    };
    const onExit = (code: number) => reject(new Error(`worker exited with ${code} while waiting for ${key}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Where the workers find their brokers. */
export interface BrokerUrls {
  readonly nats: string;
  readonly redis: string;
  readonly rabbitmq: string;
}

export interface Delivery {
  /** Events per second the publisher got through (acknowledged, on JetStream). */
  publishedPerSecond: number;
  /** Events per second received (and rebuilt) by each subscriber, the slowest counting. */
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rebuilt: number;
  /** CPU µs per event of the publisher process, and of the busiest subscriber process. */
  publisherCpuUs: number;
  subscriberCpuUs: number;
}

/** One publisher process and `subscribers` subscriber processes of one kind, kept for several runs. */
export class CrossProcessRig {
  private constructor(
    private readonly publisher: ChildProcess,
    private readonly subscribers: ChildProcess[],
  ) {}

  static async start(kind: Kind, urls: BrokerUrls, subscribers = 1): Promise<CrossProcessRig> {
    const subs = Array.from({ length: subscribers }, () => spawnWorker('subscriber', kind, urls));
    await Promise.all(subs.map((s) => next(s, 'started')));
    const publisher = spawnWorker('publisher', kind, urls);
    await next(publisher, 'started');
    return new CrossProcessRig(publisher, subs);
  }

  async run(command: Extract<Command, { cmd: 'burst' | 'awaited' | 'rate' }>): Promise<Delivery> {
    const count = command.cmd === 'rate' ? command.perSecond * command.seconds : command.count;
    await Promise.all(
      this.subscribers.map((s) => {
        const ready = next(s, 'ready');
        s.send({ cmd: 'expect', count } satisfies Command);
        return ready;
      }),
    );
    const done = this.subscribers.map((s) => next<Received>(s, 'done'));
    const published = next<{ elapsedMs: number; cpuMs: number }>(this.publisher, 'published');
    this.publisher.send(command);
    const results = await Promise.all(done);
    const { elapsedMs, cpuMs } = await published;
    const latencies = Float64Array.from(results.flatMap((r) => r.latencies)).sort();
    return {
      publishedPerSecond: count / (elapsedMs / 1000),
      eventsPerSecond: Math.min(...results.map((r) => r.count / (r.elapsedMs / 1000))),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies[latencies.length - 1],
      rebuilt: Math.min(...results.map((r) => r.rebuilt)),
      publisherCpuUs: (cpuMs * 1000) / count,
      subscriberCpuUs: Math.max(...results.map((r) => (r.cpuMs * 1000) / count)),
    };
  }

  async stop(): Promise<void> {
    const all = [this.publisher, ...this.subscribers];
    for (const child of all) child.kill('SIGTERM');
    await Promise.all(all.map((child) => (child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined)));
  }
}
