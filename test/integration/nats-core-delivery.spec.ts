import { Module, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainEventBus, EventBusModule, OnDomainEvent, type EventBusModuleOptions, type NatsOptions } from '../../lib/index.js';
import { OrderPlaced } from '../fixtures/game-events.js';
import { eventually } from '../support/instances.js';
import { NatsServer } from '../support/nats-server.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** What the application logged, for assertions on what an operator would read. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log = (message: unknown) => void this.lines.push(`LOG ${String(message)}`);
  warn = (message: unknown) => void this.lines.push(`WARN ${String(message)}`);
  error = (message: unknown) => void this.lines.push(`ERROR ${String(message)}`);
  debug = () => undefined;
  verbose = () => undefined;
}

let apps: INestApplicationContext[] = [];
let instance = 0;

async function app(nats: NatsOptions, extra: Partial<EventBusModuleOptions> = {}, providers: (new (...args: never[]) => unknown)[] = [], logger: LoggerService | false = false) {
  @Module({ imports: [CqrsModule.forRoot(), EventBusModule.forRoot({ transport: 'nats', instanceId: `d${instance++}`, nats, ...extra })], providers })
  class AppModule {}
  const context = await NestFactory.createApplicationContext(AppModule, { logger });
  apps.push(context);
  return context;
}

/** The order ids a plain nats.js subscriber receives, straight from the server. */
async function orders(url: string): Promise<{ received: string[]; connection: NatsConnection }> {
  const connection = await connect({ servers: url });
  const received: string[] = [];
  connection.subscribe('events.domain.OrderPlaced', {
    callback: (_error, message) => void received.push((message.json() as { data: { orderId: string } }).data.orderId),
  });
  await connection.flush();
  return { received, connection };
}

/** The ids of `sent` that `received` lacks: the first few, and how many in all. */
function missing(sent: string[], received: string[]): string[] {
  const seen = new Set(received);
  const lost = sent.filter((id) => !seen.has(id));
  return lost.length === 0 ? [] : [`${lost.length} of ${sent.length} missing`, ...lost.slice(0, 5)];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Publishes `perSecond` events for `seconds`, each settling into resolved or rejected, in 1 ms slices. */
async function publishAtRate(bus: DomainEventBus, perSecond: number, seconds: number, during: (elapsedMs: number) => void) {
  const resolved: string[] = [];
  const rejected: string[] = [];
  const settled: Promise<unknown>[] = [];
  const total = perSecond * seconds;
  const start = Date.now();
  let seq = 0;
  while (seq < total) {
    const elapsed = Date.now() - start;
    during(elapsed);
    for (const due = Math.min(total, Math.floor((elapsed / 1000) * perSecond)); seq < due; seq++) {
      const id = `rate-${seq}`;
      settled.push(bus.publish(new OrderPlaced(id, seq)).then(() => resolved.push(id), () => rejected.push(id)));
    }
    await sleep(1);
  }
  await Promise.all(settled);
  return { resolved, rejected };
}

describe('core NATS delivery: outages, the publish buffer, slow consumers, coalesced writes', () => {
  let server: NatsServer;
  let proxy: TcpProxy;
  let subscriber: NatsConnection | undefined;

  beforeEach(async () => {
    server = await NatsServer.start();
    proxy = await TcpProxy.start(server.port);
  });

  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close().catch(() => undefined)));
    apps = [];
    await subscriber?.close();
    subscriber = undefined;
    await proxy.dispose();
    await server.dispose();
  });

  it('delivers every publish that resolved during an outage, once the connection is back', async () => {
    const watcher = await orders(server.url);
    subscriber = watcher.connection;
    const publisher = await app({ servers: proxy.url, reconnectTimeWaitMs: 250 });
    const bus = publisher.get(DomainEventBus);
    let phase = 0;
    const { resolved, rejected } = await publishAtRate(bus, 1_000, 5, (elapsed) => {
      if (phase === 0 && elapsed > 1_000) {
        phase = 1;
        void proxy.down();
      } else if (phase === 1 && elapsed > 3_500) {
        phase = 2;
        void proxy.up();
      }
    });
    expect(phase).toBe(2);
    expect(rejected).toEqual([]); // far below the buffer's bounds
    await eventually(() => expect(missing(resolved, watcher.received)).toEqual([]), 20_000);
    await eventually(() => expect(bus.status().transport).toMatchObject({ connected: true, disconnects: 1, reconnects: 1, bufferedPublishes: 0, lostPublishes: 0 }));
  });

  it('rejects publishes beyond the buffer bound while disconnected, counts them, and delivers every accepted one', async () => {
    const watcher = await orders(server.url);
    subscriber = watcher.connection;
    const publisher = await app({ servers: proxy.url, reconnectTimeWaitMs: 250, publishBufferMessages: 300 });
    const bus = publisher.get(DomainEventBus);
    await eventually(() => expect(bus.status().ready).toBe(true));
    await proxy.down();
    await eventually(() => expect(bus.status().transport.connected).toBe(false));
    const results = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => bus.publish(new OrderPlaced(`bound-${i}`, i))));
    const accepted = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`bound-${i}`] : []));
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(accepted).toHaveLength(300);
    expect(refused).toHaveLength(200);
    expect(refused[0].reason).toMatchObject({ name: 'PublishBufferFullError' });
    expect(String(refused[0].reason.message)).toContain('NATS_PUBLISH_BUFFER_MESSAGES');
    expect(bus.status().stats.publishErrors).toBe(200);
    expect(bus.status().transport).toMatchObject({ bufferedPublishes: 300, publishBufferRejections: 200 });
    expect(bus.status().transport.disconnectedSince).toEqual(expect.any(String));
    expect(bus.status().transport.lastError).toMatch(/disconnected/);
    await proxy.up();
    await eventually(() => expect(watcher.received).toEqual(accepted), 20_000);
    await eventually(() => expect(bus.status().transport).toMatchObject({ connected: true, bufferedPublishes: 0 }));
    expect(bus.status().transport.disconnectedSince).toBeUndefined();
  });

  it('close() waits for the connection to come back and delivers what was accepted', async () => {
    const watcher = await orders(server.url);
    subscriber = watcher.connection;
    const publisher = await app({ servers: proxy.url, reconnectTimeWaitMs: 100 });
    const bus = publisher.get(DomainEventBus);
    await proxy.down();
    await eventually(() => expect(bus.status().transport.connected).toBe(false));
    const accepted = Array.from({ length: 100 }, (_, i) => `closing-${i}`);
    await Promise.all(accepted.map((id, i) => bus.publish(new OrderPlaced(id, i))));
    const closed = publisher.close();
    apps = apps.filter((a) => a !== publisher);
    await sleep(500);
    await proxy.up();
    await closed;
    await eventually(() => expect(watcher.received).toEqual(accepted));
  });

  it('counts and logs accepted publishes that are lost when the connection closes for good', async () => {
    const logger = new CapturingLogger();
    const publisher = await app({ servers: proxy.url, reconnectTimeWaitMs: 50, maxReconnectAttempts: 2 }, {}, [], logger);
    const bus = publisher.get(DomainEventBus);
    await proxy.down();
    await Promise.all(Array.from({ length: 40 }, (_, i) => bus.publish(new OrderPlaced(`doomed-${i}`, i))));
    await eventually(() => expect(bus.status().transport).toMatchObject({ connected: false, lostPublishes: 40, bufferedPublishes: 0 }));
    expect(logger.lines.some((l) => /ERROR .*40 accepted publishes were not delivered/.test(l))).toBe(true);
    await expect(bus.publish(new OrderPlaced('after', 0))).rejects.toThrow(/closed/);
  });

  it('with publishConfirm "server", settles a publish once the server has it: through an outage, or rejects when the connection closes for good', async () => {
    const watcher = await orders(server.url);
    subscriber = watcher.connection;
    const publisher = await app({ servers: proxy.url, reconnectTimeWaitMs: 100, maxReconnectAttempts: 20, publishConfirm: 'server' });
    const bus = publisher.get(DomainEventBus);
    await bus.publish(new OrderPlaced('confirmed-0', 0));
    await eventually(() => expect(watcher.received).toEqual(['confirmed-0']));
    await proxy.down();
    let settled = false;
    const during = bus.publish(new OrderPlaced('confirmed-1', 1)).finally(() => (settled = true));
    await sleep(500);
    expect(settled).toBe(false);
    await proxy.up();
    await during;
    await eventually(() => expect(watcher.received).toEqual(['confirmed-0', 'confirmed-1']));

    await proxy.down();
    const doomed = bus.publish(new OrderPlaced('confirmed-2', 2));
    await expect(doomed).rejects.toThrow(/NATS connection closed/);
    expect(bus.status().stats.publishErrors).toBe(1);
    expect(bus.status().transport.lostPublishes).toBe(1);
  });

  it('coalesces an awaited publish loop into few socket writes', async () => {
    const watcher = await orders(server.url);
    subscriber = watcher.connection;
    const publisher = await app({ servers: server.url });
    const bus = publisher.get(DomainEventBus);
    const count = 5_000;
    const write = Socket.prototype.write;
    let writes = 0;
    Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
      if (this.remotePort === server.port) writes++;
      return write.apply(this, args);
    } as Socket['write'];
    try {
      for (let i = 0; i < count; i++) await bus.publish(new OrderPlaced(`loop-${i}`, i));
      await eventually(() => expect(watcher.received).toHaveLength(count));
    } finally {
      Socket.prototype.write = write;
    }
    // Each event is ~200 bytes on the wire: one write per event would be 5,000.
    expect(writes).toBeLessThan(count / 20);
    expect(watcher.received).toEqual(Array.from({ length: count }, (_, i) => `loop-${i}`));
  });
});

describe('core NATS slow consumers', () => {
  let server: NatsServer;
  let confDir: string;

  beforeAll(async () => {
    confDir = mkdtempSync(join(tmpdir(), 'nats-slow-'));
    // A server that cuts slow consumers quickly (defaults: 64 MB pending, 10 s write deadline).
    writeFileSync(join(confDir, 'nats.conf'), 'max_pending: 2097152\nwrite_deadline: "2s"\n');
    server = await NatsServer.start(['-c', join(confDir, 'nats.conf')]);
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close().catch(() => undefined)));
    apps = [];
    await server.dispose();
    rmSync(confDir, { recursive: true, force: true });
  });

  const handled: string[] = [];

  class CpuBoundHandler {
    @OnDomainEvent(OrderPlaced)
    on(event: OrderPlaced) {
      const until = performance.now() + 1;
      while (performance.now() < until); // 1 ms of CPU per event
      handled.push(event.orderId);
    }
  }

  it('reports a subscriber that falls behind: counts what it dropped, says so in status() and the log, stays connected', async () => {
    const logger = new CapturingLogger();
    const slow = await app({ servers: server.url, receiveBufferMessages: 1_000 }, {}, [CpuBoundHandler], logger);
    const slowBus = slow.get(DomainEventBus);
    await eventually(() => expect(slowBus.status().ready).toBe(true));
    const publisher = await app({ servers: server.url }, {}, [], logger); // Nest's logger is one per process
    const bus = publisher.get(DomainEventBus);
    const count = 20_000;
    const payload = 'x'.repeat(400);
    for (let i = 0; i < count; i += 1_000) {
      await Promise.all(Array.from({ length: 1_000 }, (_, j) => bus.publish(new OrderPlaced(`slow-${i + j}-${payload}`, i + j))));
    }
    await eventually(() => {
      const { transport } = slowBus.status();
      expect(handled.length + (transport.droppedMessages ?? 0)).toBe(count);
    }, 30_000);
    const { transport } = slowBus.status();
    expect(transport.droppedMessages).toBeGreaterThan(0);
    expect(transport.slowConsumers).toBeGreaterThanOrEqual(1);
    expect(transport).toMatchObject({ connected: true, disconnects: 0 });
    expect(logger.lines.some((l) => /WARN slow consumer/.test(l))).toBe(true);
    // What it handled, it handled in order.
    const numbers = handled.map((id) => Number(id.split('-')[1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  });
});
