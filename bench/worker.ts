import 'reflect-metadata';
import { Controller, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, EventPattern, Transport, type ClientProxy } from '@nestjs/microservices';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Connection as RabbitMqConnection } from 'rabbitmq-client';
import { DomainEventBus, EventBusModule, EVENT_TRANSPORT, OnDomainEvent, type EventTransport } from '../lib/index.js';
import { JETSTREAM_WINDOW, now, PlayerMoved, playerMoved } from './bench-event.js';

/**
 * One side of a cross-process scenario, as its own process: `node worker.js <role> <kind>`,
 * driven over IPC by cross-process.ts. Kinds: ours (DomainEventBus over core NATS), raw
 * (nats.js with JSON.stringify/parse), microservices (@nestjs/microservices NATS), and on JetStream
 * ours-jetstream (a group handler) and raw-jetstream (@nats-io/jetstream, a durable consumer acking
 * each message), on RabbitMQ ours-rabbitmq (a group handler: a quorum queue) and raw-rabbitmq
 * (rabbitmq-client as its README teaches: a confirming publisher, a consumer of a quorum queue
 * acking each message), each pair with the same in-flight window for publishes and deliveries.
 */
export type Kind = 'ours' | 'raw' | 'microservices' | 'ours-jetstream' | 'raw-jetstream' | 'ours-rabbitmq' | 'raw-rabbitmq';
export type Command =
  | { cmd: 'expect'; count: number }
  | { cmd: 'burst'; count: number }
  | { cmd: 'rate'; perSecond: number; seconds: number };
export interface Received {
  count: number;
  /** From the first message received to the last, in ms. */
  elapsedMs: number;
  /** Per message, receipt minus send time, in ms. */
  latencies: number[];
  /** Messages that were real class instances with their Date and value object rebuilt. */
  rebuilt: number;
}

const [role, kind] = process.argv.slice(2) as ['publisher' | 'subscriber', Kind];
const url = process.env.NATS_URL!;
const rabbitMqUrl = process.env.RABBITMQ_URL!;
const SUBJECT = 'events.domain.PlayerMoved';
const send = (message: unknown) => process.send!(message);

/** What the subscriber measures, whatever delivers the events. */
class Receiver {
  private expected = 0;
  private count = 0;
  private first = 0;
  private rebuilt = 0;
  private latencies: number[] = [];

  expect(count: number): void {
    Object.assign(this, { expected: count, count: 0, first: 0, rebuilt: 0, latencies: [] });
  }

  receive(event: { sentAt: number }): void {
    const t = now();
    if (this.count === 0) this.first = t;
    this.latencies.push(t - event.sentAt);
    if (event instanceof PlayerMoved && event.at instanceof Date) this.rebuilt++;
    if (++this.count === this.expected) {
      const result: Received = { count: this.count, elapsedMs: t - this.first, latencies: this.latencies, rebuilt: this.rebuilt };
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

class OursGroupSubscriber {
  @OnDomainEvent(PlayerMoved, { group: 'bench' })
  on(event: PlayerMoved) {
    receiver.receive(event);
  }
}

const durable = kind.endsWith('jetstream') || kind.endsWith('rabbitmq');
const oursBus = EventBusModule.forRoot({
  transport: kind.endsWith('rabbitmq') ? 'rabbitmq' : durable ? 'jetstream' : 'nats',
  nats: { servers: url },
  jetstream: { maxInFlight: JETSTREAM_WINDOW, idempotency: 'off' },
  rabbitmq: { url: rabbitMqUrl, maxInFlight: JETSTREAM_WINDOW, idempotency: 'off' },
});

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
  flush(): Promise<void>;
}

async function publisher(): Promise<Publisher> {
  switch (kind) {
    case 'ours': {
      const app = await NestFactory.createApplicationContext(OursPublisherModule, { logger: false });
      const bus = app.get(DomainEventBus);
      const transport = app.get<EventTransport>(EVENT_TRANSPORT);
      return { publish: (seq) => void bus.publish(playerMoved(seq)), flush: () => transport.flush() };
    }
    case 'raw': {
      const nc = await connect({ servers: url });
      return { publish: (seq) => nc.publish(SUBJECT, JSON.stringify(playerMoved(seq))), flush: () => nc.flush() };
    }
    case 'ours-jetstream':
    case 'ours-rabbitmq': {
      const app = await NestFactory.createApplicationContext(OursPublisherModule, { logger: false });
      const bus = app.get(DomainEventBus);
      return { publish: (seq) => bus.publish(playerMoved(seq)), flush: async () => undefined };
    }
    case 'raw-rabbitmq': {
      const publisher = rawRabbitMq().createPublisher({ confirm: true, exchanges: [{ exchange: RAW_EXCHANGE, type: 'topic', durable: true }] });
      return { publish: (seq) => publisher.send({ exchange: RAW_EXCHANGE, routingKey: RAW_SUBJECT, durable: true }, playerMoved(seq)), flush: async () => undefined };
    }
    case 'raw-jetstream': {
      const nc = await connect({ servers: url, noAsyncTraces: true });
      const js = jetstream(nc);
      return { publish: (seq) => js.publish(RAW_SUBJECT, JSON.stringify(playerMoved(seq)), { msgID: `m${seq}-${Date.now()}` }), flush: async () => undefined };
    }
    case 'microservices': {
      const client: ClientProxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [url] } });
      await client.connect();
      return { publish: (seq) => void client.emit('PlayerMoved', playerMoved(seq)), flush: () => new Promise((r) => setImmediate(r)) };
    }
  }
}

async function subscribe(): Promise<INestApplicationContext | NatsConnection | RabbitMqConnection> {
  switch (kind) {
    case 'ours':
      return NestFactory.createApplicationContext(OursSubscriberModule, { logger: false });
    case 'raw': {
      const nc = await connect({ servers: url });
      nc.subscribe(SUBJECT, { callback: (_error, message) => receiver.receive(JSON.parse(message.string())) });
      await nc.flush();
      return nc;
    }
    case 'ours-jetstream':
    case 'ours-rabbitmq':
      return NestFactory.createApplicationContext(OursSubscriberModule, { logger: false });
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
    case 'raw-jetstream': {
      const nc = await connect({ servers: url, noAsyncTraces: true });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: RAW_STREAM, subjects: ['raw.>'] });
      await jsm.consumers.add(RAW_STREAM, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, max_ack_pending: JETSTREAM_WINDOW });
      const consumer = await jetstream(nc).consumers.get(RAW_STREAM, 'bench');
      await consumer.consume({
        max_messages: JETSTREAM_WINDOW,
        callback: (message) => {
          receiver.receive(JSON.parse(message.string()));
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
    if (command.cmd === 'burst') {
      const chunk = durable ? JETSTREAM_WINDOW : CHUNK;
      for (let seq = 0; seq < command.count; seq += chunk) {
        const acks: unknown[] = [];
        for (let i = seq; i < Math.min(command.count, seq + chunk); i++) acks.push(p.publish(i));
        await Promise.all(acks);
        await p.flush();
      }
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
    send({ published: { elapsedMs: now() - start } });
  });
}
// Exit normally on SIGTERM, so that `--cpu-prof` (BENCH_CPU_PROF) can write its profile.
process.once('SIGTERM', () => process.exit(0));
send({ started: true });
