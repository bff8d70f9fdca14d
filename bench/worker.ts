import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, EventPattern, Transport, type ClientProxy } from '@nestjs/microservices';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createClient } from 'redis';
import { Connection as RabbitMqConnection } from 'rabbitmq-client';
import { DomainEventBus, EventBusModule, EVENT_TRANSPORT, OnDomainEvent, type EventTransport } from '../lib/index.js';
import { JETSTREAM_WINDOW, now, PlayerMoved, playerMoved } from './bench-event.js';

/**
 * One side of a cross-process scenario, as its own process: `node worker.js <role> <kind>`,
 * driven over IPC by cross-process.ts. Kinds: ours (DomainEventBus over core NATS; ours-binary in CloudEvents
 * binary mode), raw
 * (nats.js with JSON.stringify/parse of the event), raw-ce (nats.js with the event inside a CloudEvents
 * envelope of the same attributes as ours, as an application sending CloudEvents by hand writes it), microservices (@nestjs/microservices NATS), and on JetStream
 * ours-jetstream (a group handler) and raw-jetstream (@nats-io/jetstream, a durable consumer acking
 * each message; raw-ce-jetstream the same with the CloudEvent of raw-ce), on Redis Streams ours-redis (a group handler) and raw-redis (node-redis: XADD,
 * XREADGROUP and an XACK per message, as its docs show; raw-ce-redis the same with the CloudEvent of raw-ce), on RabbitMQ ours-rabbitmq (a group handler: a
 * quorum queue) and raw-rabbitmq (rabbitmq-client as its README teaches: a confirming publisher, a consumer
 * of a quorum queue acking each message), each pair with the same in-flight window for publishes and deliveries.
 */
export type Kind = 'ours' | 'ours-binary' | 'raw' | 'raw-ce' | 'microservices' | 'ours-jetstream' | 'raw-jetstream' | 'raw-ce-jetstream' | 'ours-redis' | 'raw-redis' | 'raw-ce-redis' | 'ours-rabbitmq' | 'raw-rabbitmq';
export type Command =
  | { cmd: 'expect'; count: number }
  | { cmd: 'burst'; count: number }
  | { cmd: 'awaited'; count: number }
  | { cmd: 'rate'; perSecond: number; seconds: number };
export interface Received {
  count: number;
  /** From the first message received to the last, in ms. */
  elapsedMs: number;
  /** Per message, receipt minus send time, in ms. */
  latencies: number[];
  /** Messages that were real class instances with their Date and value object rebuilt. */
  rebuilt: number;
  /** CPU time of this process (user + system) from expect() to the last message, in ms: steadier than rates on a busy machine. */
  cpuMs: number;
}

/** CPU time (user + system) used by this process since `from`, in ms. */
const cpuMsSince = (from: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(from);
  return (user + system) / 1000;
};

const [role, kind] = process.argv.slice(2) as ['publisher' | 'subscriber', Kind];
const url = process.env.NATS_URL!;
const redisUrl = process.env.REDIS_URL!;
const rabbitMqUrl = process.env.RABBITMQ_URL!;
/** Raw nats.js's subject: apart from ours (events.domain.PlayerMoved), as the rigs of a scenario run side by side. */
const SUBJECT = 'bench.raw.PlayerMoved';
const CE_SUBJECT = 'bench.rawce.PlayerMoved';
const CE_ORIGIN = `i${randomBytes(9).toString('base64url')}`;
/** The structured CloudEvent an application would build by hand: the attributes ours sends (ids of the same length), data as plain JSON. */
const cloudEvent = (seq: number) => {
  const event = playerMoved(seq);
  return {
    specversion: '1.0',
    origin: CE_ORIGIN,
    id: `${CE_ORIGIN.slice(1)}${seq.toString(36)}`,
    type: 'PlayerMoved',
    source: '/nestjs-domain-events',
    time: event.at.toISOString(),
    datacontenttype: 'application/json',
    data: event,
  };
};
const send = (message: unknown) => process.send!(message);

/** What the subscriber measures, whatever delivers the events. */
class Receiver {
  private expected = 0;
  private count = 0;
  private first = 0;
  private rebuilt = 0;
  private latencies: number[] = [];
  private cpu = process.cpuUsage();

  expect(count: number): void {
    Object.assign(this, { expected: count, count: 0, first: 0, rebuilt: 0, latencies: [], cpu: process.cpuUsage() });
  }

  receive(event: { sentAt: number }): void {
    const t = now();
    if (this.count === 0) this.first = t;
    this.latencies.push(t - event.sentAt);
    if (event instanceof PlayerMoved && event.at instanceof Date) this.rebuilt++;
    if (++this.count === this.expected) {
      const result: Received = { count: this.count, elapsedMs: t - this.first, latencies: this.latencies, rebuilt: this.rebuilt, cpuMs: cpuMsSince(this.cpu) };
      send({ done: result });
    }
  }
}

const receiver = new Receiver();

@Controller()
class MicroservicesSubscriber {
  @EventPattern('PlayerMoved')
  on(data: { sentAt: number }) {
    receiver.receive(data);
  }
}

@Module({ controllers: [MicroservicesSubscriber] })
class MicroservicesModule {}

class OursSubscriber {
  @OnDomainEvent(PlayerMoved)
  on(event: PlayerMoved) {
    receiver.receive(event);
  }
}

const RAW_STREAM = 'RAW_BENCH';
const RAW_SUBJECT = 'raw.PlayerMoved';
/** What a raw durable reference sends and reads back: the CloudEvent of raw-ce (raw-ce-jetstream, raw-ce-redis), or the bare event. */
const rawBody = kind.startsWith('raw-ce') ? (seq: number) => JSON.stringify(cloudEvent(seq)) : (seq: number) => JSON.stringify(playerMoved(seq));
const rawEvent = kind.startsWith('raw-ce') ? (text: string) => JSON.parse(text).data : (text: string) => JSON.parse(text);

/** raw-jetstream and raw-ce-jetstream run side by side: each on a stream of its own. */
const rawJetStream = kind === 'raw-ce-jetstream' ? { stream: 'RAWCE_BENCH', subject: 'rawce.PlayerMoved' } : { stream: RAW_STREAM, subject: RAW_SUBJECT };

class OursGroupSubscriber {
  @OnDomainEvent(PlayerMoved, { group: 'bench' })
  on(event: PlayerMoved) {
    receiver.receive(event);
  }
}

const durable = kind.endsWith('jetstream') || kind.endsWith('redis') || kind.endsWith('rabbitmq');
const oursBus = EventBusModule.forRoot({
  transport: kind.endsWith('redis') ? 'redis' : kind.endsWith('rabbitmq') ? 'rabbitmq' : durable ? 'jetstream' : 'nats',
  // A subscriber behind a burst holds the backlog in its receive buffer rather than in the server (run.ts
  // lets the server buffer 1 GiB for raw nats.js): the same room for ours, so that neither drops.
  nats: { servers: url, receiveBufferMessages: 10_000_000, receiveBufferBytes: 1024 ** 3 },
  jetstream: { maxInFlight: JETSTREAM_WINDOW, idempotency: 'off' },
  redis: { url: redisUrl, maxInFlight: JETSTREAM_WINDOW, idempotency: 'off' },
  rabbitmq: { url: rabbitMqUrl, maxInFlight: JETSTREAM_WINDOW, idempotency: 'off' },
  cloudEvents: { mode: kind === 'ours-binary' ? 'binary' : 'structured' },
  // Subjects of its own: the rigs of a scenario stay up side by side, and a subscriber of ours would
  // otherwise also receive (and decode, on the same cores) the events of the binary-mode rig.
  ...(kind === 'ours-binary' ? { subjectPrefix: 'events.binary' } : {}),
});

/** raw-redis and raw-ce-redis run side by side: each on a stream of its own. */
const RAW_REDIS_STREAM = kind === 'raw-ce-redis' ? 'RAWCE_BENCH' : 'RAW_BENCH';

/** node-redis with the command timeout off, as ours runs it (the default timer per command doubles the client's CPU). */
async function rawRedis() {
  const client = createClient({ url: redisUrl, commandOptions: { timeout: 0 } });
  await client.connect();
  return client;
}

const RAW_EXCHANGE = 'raw-bench';
const rawRabbitMq = () => {
  const rabbit = new RabbitMqConnection(rabbitMqUrl);
  rabbit.on('error', (error) => console.error('raw-rabbitmq', error));
  return rabbit;
};

@Module({ imports: [oursBus], providers: [durable ? OursGroupSubscriber : OursSubscriber] })
class OursSubscriberModule {}

@Module({ imports: [oursBus] })
class OursPublisherModule {}

/**
 * Publishes as fast as the client takes it, flushing every chunk so that both sides stay within
 * memory; on JetStream publish() returns the ack, and a chunk is the in-flight window.
 */
interface Publisher {
  publish(seq: number): unknown;
  /** One publish as an application awaits it (`await bus.publish(e)`; raw: an async function around nc.publish). */
  awaited?(seq: number): Promise<unknown>;
  flush(): Promise<void>;
}

async function publisher(): Promise<Publisher> {
  switch (kind) {
    case 'ours':
    case 'ours-binary': {
      const app = await NestFactory.createApplicationContext(OursPublisherModule, { logger: false });
      const bus = app.get(DomainEventBus);
      const transport = app.get<EventTransport>(EVENT_TRANSPORT);
      return { publish: (seq) => void bus.publish(playerMoved(seq)), awaited: (seq) => bus.publish(playerMoved(seq)), flush: () => transport.flush() };
    }
    case 'raw':
    case 'raw-ce': {
      const nc = await connect({ servers: url });
      const publish =
        kind === 'raw' ? (seq: number) => nc.publish(SUBJECT, JSON.stringify(playerMoved(seq))) : (seq: number) => nc.publish(CE_SUBJECT, JSON.stringify(cloudEvent(seq)));
      // nc.publish is synchronous: what an application awaits per event is its own async function around it.
      return { publish, awaited: async (seq) => publish(seq), flush: () => nc.flush() };
    }
    case 'ours-jetstream':
    case 'ours-redis':
    case 'ours-rabbitmq': {
      const app = await NestFactory.createApplicationContext(OursPublisherModule, { logger: false });
      const bus = app.get(DomainEventBus);
      return { publish: (seq) => bus.publish(playerMoved(seq)), flush: async () => undefined };
    }
    case 'raw-redis':
    case 'raw-ce-redis': {
      const client = await rawRedis();
      return { publish: (seq) => client.xAdd(RAW_REDIS_STREAM, '*', { subject: SUBJECT, data: rawBody(seq) }), flush: async () => undefined };
    }
    case 'raw-rabbitmq': {
      const publisher = rawRabbitMq().createPublisher({ confirm: true, exchanges: [{ exchange: RAW_EXCHANGE, type: 'topic', durable: true }] });
      return { publish: (seq) => publisher.send({ exchange: RAW_EXCHANGE, routingKey: RAW_SUBJECT, durable: true }, playerMoved(seq)), flush: async () => undefined };
    }
    case 'raw-jetstream':
    case 'raw-ce-jetstream': {
      const nc = await connect({ servers: url, noAsyncTraces: true });
      const js = jetstream(nc);
      return { publish: (seq) => js.publish(rawJetStream.subject, rawBody(seq), { msgID: `m${seq}-${Date.now()}` }), flush: async () => undefined };
    }
    case 'microservices': {
      const client: ClientProxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [url] } });
      await client.connect();
      return { publish: (seq) => void client.emit('PlayerMoved', playerMoved(seq)), flush: () => new Promise((r) => setImmediate(r)) };
    }
  }
}

/** Subscribes; what it returns keeps the subscription alive. */
async function subscribe(): Promise<unknown> {
  switch (kind) {
    case 'ours':
    case 'ours-binary':
      return NestFactory.createApplicationContext(OursSubscriberModule, { logger: false });
    case 'raw': {
      const nc = await connect({ servers: url });
      nc.subscribe(SUBJECT, { callback: (_error, message) => receiver.receive(JSON.parse(message.string())) });
      await nc.flush();
      return nc;
    }
    case 'raw-ce': {
      const nc = await connect({ servers: url });
      nc.subscribe(CE_SUBJECT, { callback: (_error, message) => receiver.receive(JSON.parse(message.string()).data) });
      await nc.flush();
      return nc;
    }
    case 'ours-jetstream':
    case 'ours-redis':
    case 'ours-rabbitmq':
      return NestFactory.createApplicationContext(OursSubscriberModule, { logger: false });
    case 'raw-redis':
    case 'raw-ce-redis': {
      const client = await rawRedis();
      await client.xGroupCreate(RAW_REDIS_STREAM, 'bench', '$', { MKSTREAM: true }).catch(() => undefined);
      const reader = client.duplicate();
      await reader.connect();
      void (async () => {
        for (;;) {
          const streams = await reader.xReadGroup('bench', 'c1', { key: RAW_REDIS_STREAM, id: '>' }, { COUNT: JETSTREAM_WINDOW, BLOCK: 1000 });
          for (const { messages } of (streams ?? []) as { messages: { id: string; message: Record<string, string> }[] }[]) {
            for (const { id, message } of messages) {
              receiver.receive(rawEvent(message.data));
              void client.xAck(RAW_REDIS_STREAM, 'bench', id);
            }
          }
        }
      })();
      return client;
    }
    case 'raw-rabbitmq': {
      const rabbit = rawRabbitMq();
      const consumer = rabbit.createConsumer(
        {
          queue: 'raw-bench',
          queueOptions: { durable: true, arguments: { 'x-queue-type': 'quorum' } },
          qos: { prefetchCount: JETSTREAM_WINDOW },
          exchanges: [{ exchange: RAW_EXCHANGE, type: 'topic', durable: true }],
          queueBindings: [{ exchange: RAW_EXCHANGE, routingKey: RAW_SUBJECT }],
        },
        (message) => receiver.receive(message.body),
      );
      await new Promise((resolve) => consumer.once('ready', resolve));
      return rabbit;
    }
    case 'raw-jetstream':
    case 'raw-ce-jetstream': {
      const nc = await connect({ servers: url, noAsyncTraces: true });
      const jsm = await jetstreamManager(nc);
      const { stream, subject } = rawJetStream;
      await jsm.streams.add({ name: stream, subjects: [subject] });
      await jsm.consumers.add(stream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, max_ack_pending: JETSTREAM_WINDOW });
      const consumer = await jetstream(nc).consumers.get(stream, 'bench');
      await consumer.consume({
        max_messages: JETSTREAM_WINDOW,
        callback: (message) => {
          receiver.receive(rawEvent(message.string()));
          message.ack();
        },
      });
      return nc;
    }
    case 'microservices': {
      const app = await NestFactory.createMicroservice(MicroservicesModule, { transport: Transport.NATS, options: { servers: [url] }, logger: false });
      await app.listen();
      return app;
    }
  }
}

const CHUNK = 1_000;

if (role === 'subscriber') {
  await subscribe();
  process.on('message', (command: Command) => {
    if (command.cmd === 'expect') {
      receiver.expect(command.count);
      send({ ready: true });
    }
  });
} else {
  const p = await publisher();
  process.on('message', async (command: Command) => {
    const start = now();
    const cpu = process.cpuUsage();
    if (command.cmd === 'burst') {
      const chunk = durable ? JETSTREAM_WINDOW : CHUNK;
      for (let seq = 0; seq < command.count; seq += chunk) {
        const acks: unknown[] = [];
        for (let i = seq; i < Math.min(command.count, seq + chunk); i++) acks.push(p.publish(i));
        await Promise.all(acks);
        await p.flush();
      }
    } else if (command.cmd === 'awaited') {
      for (let seq = 0; seq < command.count; seq++) await p.awaited!(seq);
      await p.flush();
    } else if (command.cmd === 'rate') {
      // A fixed rate in 1 ms slices: each slice publishes what is due by then.
      const total = command.perSecond * command.seconds;
      const start = now();
      let seq = 0;
      while (seq < total) {
        const due = Math.min(total, Math.floor(((now() - start) / 1000) * command.perSecond));
        for (; seq < due; seq++) p.publish(seq);
        await new Promise((r) => setTimeout(r, 1));
      }
      await p.flush();
    }
    send({ published: { elapsedMs: now() - start, cpuMs: cpuMsSince(cpu) } });
  });
}
// Exit normally on SIGTERM, so that `--cpu-prof` (BENCH_CPU_PROF) can write its profile.
process.once('SIGTERM', () => process.exit(0));
send({ started: true });
