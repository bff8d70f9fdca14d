import 'reflect-metadata';
import { Injectable, Module, ServiceUnavailableException, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  DomainEvent,
  DomainEventBus,
  EventBusHealthIndicator,
  EventBusModule,
  OnDomainEvent,
  type EventBusModuleOptions,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { NatsServer } from '../support/nats-server.js';

@DomainEvent('HealthSpecJob')
class Job {
  constructor(readonly n: number) {}
}

let gate: Promise<void> = Promise.resolve();

@Injectable()
class Workers {
  @OnDomainEvent(Job, { group: 'workers' })
  async work() {
    await gate;
  }

  @OnDomainEvent(Job, { group: 'failing', attempts: 1 })
  fail(job: Job) {
    throw new Error(`job ${job.n} failed on purpose`);
  }
}

async function boot(bus: EventBusModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [TerminusModule, EventBusModule.forRoot(bus)], providers: [Workers] })
  class HealthApp {}
  return NestFactory.createApplicationContext(HealthApp, { logger: false });
}

/** What terminus answers: its body, whether the check passed or not. */
async function check(app: INestApplicationContext): Promise<{ status: string; details: Record<string, Record<string, unknown>> }> {
  const indicator = app.get(EventBusHealthIndicator);
  try {
    return (await app.get(HealthCheckService).check([() => indicator.isHealthy('eventBus')])) as never;
  } catch (error) {
    if (error instanceof ServiceUnavailableException) return error.getResponse() as never;
    throw error;
  }
}

describe('health: status() and the terminus indicator tell the truth (real nats-server)', () => {
  let server: NatsServer;
  let app: INestApplicationContext | undefined;

  beforeEach(async () => {
    server = await NatsServer.start();
  });

  afterEach(async () => {
    gate = Promise.resolve();
    await app?.close();
    app = undefined;
    await server.dispose();
  });

  it('core NATS: down with the reason while the server is stopped, ready and up again once it is back', async () => {
    app = await boot({ transport: 'nats', nats: { servers: server.url, reconnectTimeWaitMs: 100 } });
    const bus = app.get(DomainEventBus);
    expect(bus.status()).toMatchObject({ ready: true, state: 'ready', transport: { connected: true } });
    expect(await check(app)).toMatchObject({ status: 'ok', details: { eventBus: { status: 'up', transport: 'nats' } } });

    const stoppedAt = new Date().toISOString();
    await server.stop();
    const outage = await eventually(() => {
      const status = bus.status();
      expect(status).toMatchObject({ ready: false, state: 'disconnected', transport: { connected: false } });
      return status;
    });
    expect(outage.transport.lastError).toMatch(/^disconnected from /);
    expect(outage.since >= stoppedAt).toBe(true);
    expect(await check(app)).toMatchObject({
      status: 'error',
      details: { eventBus: { status: 'down', state: 'disconnected', reason: 'no server is reachable', lastError: outage.transport.lastError } },
    });

    await server.restart();
    await eventually(() => expect(bus.status()).toMatchObject({ ready: true, state: 'ready', transport: { connected: true, reconnects: 1 } }));
    expect(bus.status().since > outage.since).toBe(true);
    expect(await check(app)).toMatchObject({ status: 'ok', details: { eventBus: { status: 'up' } } });
  });

  it('is down while the bus shuts down', async () => {
    app = await boot({ transport: 'memory' });
    const indicator = app.get(EventBusHealthIndicator);
    const bus = app.get(DomainEventBus);
    expect((await indicator.isHealthy()).eventBus.status).toBe('up');
    await app.close();
    app = undefined;
    expect(bus.status()).toMatchObject({ ready: false, state: 'closing' });
    expect(await indicator.isHealthy('bus')).toMatchObject({ bus: { status: 'down', reason: 'the event bus is shutting down' } });
  });

  it('JetStream: consumers pending and ack pending, dead letters, a deleted consumer recreated, and down when the stream is missing', async () => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    app = await boot({ transport: 'jetstream', nats: { servers: server.url }, jetstream: { storage: 'memory' }, retry: { initialDelayMs: 10 } });
    const bus = app.get(DomainEventBus);
    for (let n = 0; n < 5; n++) await bus.publish(new Job(n));

    const busy = await eventually(async () => {
      const inspection = await bus.inspect();
      // One consumer per subject of the route (the type, and the type with a key), each delivering to the blocked handler.
      const workers = inspection.server.consumers?.find((c) => c.group === 'workers' && c.ackPending > 0);
      expect(workers).toMatchObject({ ackPending: 5, pending: 0 });
      expect(inspection.server.deadLetters).toBe(5);
      return inspection;
    });
    expect(busy.server.problems).toEqual([]);
    expect(busy.server.consumers?.map((c) => c.group).sort()).toEqual(['failing', 'failing', 'workers', 'workers']);
    expect(await check(app)).toMatchObject({ status: 'ok', details: { eventBus: { status: 'up', transport: 'jetstream', deadLetters: 5 } } });
    release();
    await eventually(async () => expect((await bus.inspect()).server.consumers?.filter((c) => c.group === 'workers' && c.ackPending + c.pending > 0)).toEqual([]));

    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      const workers = busy.server.consumers!.find((c) => c.group === 'workers' && c.ackPending > 0)!.name;
      // A consumer lost (with its node, or deleted) is recreated by its members: up again once it is back.
      await jsm.consumers.delete('DOMAIN_EVENTS', workers);
      await eventually(async () => expect((await bus.inspect()).server.consumers?.map((c) => c.name)).toContain(workers));
      expect(await check(app)).toMatchObject({ status: 'ok', details: { eventBus: { status: 'up' } } });
      await jsm.streams.delete('DOMAIN_EVENTS');
      expect(await check(app)).toMatchObject({ status: 'error', details: { eventBus: { status: 'down', reason: 'stream DOMAIN_EVENTS is missing' } } });
    } finally {
      await nc.close();
    }
  });

  it('status(): per type published and received, per handler runs, errors, the last error and durations', async () => {
    app = await boot({ transport: 'nats', nats: { servers: server.url } });
    const bus = app.get(DomainEventBus);
    for (let n = 0; n < 20; n++) await bus.publish(new Job(n));
    const status = await eventually(() => {
      const s = bus.status();
      expect(s.types.HealthSpecJob).toEqual({ published: 20, received: 40 }); // once per group subscription
      expect(s.handlers['Workers.fail']).toMatchObject({ runs: 20, errors: 20, lastError: 'job 19 failed on purpose' });
      return s;
    });
    expect(status.handlers['Workers.work']).toMatchObject({ runs: 20, errors: 0, lastError: undefined });
    expect(status.handlers['Workers.work'].p50Ms).toBeGreaterThanOrEqual(0);
    expect(status.handlers['Workers.fail'].p99Ms).toBeGreaterThanOrEqual(status.handlers['Workers.fail'].p50Ms!);
    expect(Date.parse(status.handlers['Workers.fail'].lastErrorAt!)).not.toBeNaN();
  });
});
