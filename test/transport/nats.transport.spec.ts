import {
  JetStreamTransport,
  NatsConnectError,
  NatsTransport,
  resolveEventBusOptions,
  type EventTransport,
  type TransportPayload,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { freePort, NatsServer } from '../support/nats-server.js';
import { describeTransportConformance } from './transport-conformance.js';

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server.dispose());

const options = (instanceId: string, transport: 'nats' | 'jetstream', servers = server.url) =>
  resolveEventBusOptions({ transport, instanceId, nats: { servers, reconnectTimeWaitMs: 100 } }, {});

async function connected(create: (i: number) => EventTransport, count: number): Promise<EventTransport[]> {
  const transports = Array.from({ length: count }, (_, i) => create(i));
  await Promise.all(transports.map((t) => t.connect()));
  return transports;
}

let instances = 0;
describeTransportConformance('core NATS', () => ({
  prefix: 'conformance',
  echoesOwnBroadcast: true,
  connect: (count) => connected(() => new NatsTransport(options(`n${instances++}`, 'nats').nats), count),
  async teardown() {},
}));

describeTransportConformance('JetStream', () => ({
  prefix: 'events.domain',
  echoesOwnBroadcast: true,
  connect: (count) => connected(() => new JetStreamTransport(options(`j${instances++}`, 'jetstream')), count),
  async teardown() {},
}));

describe('JetStream transport with an idempotency store of its own', () => {
  it('skips what the store has seen, and records what it handled', async () => {
    const recorded: string[] = [];
    const store = {
      seen: async (_consumer: string, id: string) => id === 'seen-before',
      record: async (_consumer: string, id: string) => void recorded.push(id),
    };
    const transport = new JetStreamTransport(
      resolveEventBusOptions({ transport: 'jetstream', instanceId: `s${instances++}`, nats: { servers: server.url }, jetstream: { idempotencyStore: store } }, {}),
    );
    await transport.connect();
    try {
      const handled: string[] = [];
      const handler = (_subject: string, payload: TransportPayload) => (handled.push(new TextDecoder().decode(payload as Uint8Array)), undefined);
      transport.subscribe('events.domain.store.x', 'store-group', handler, { attempts: 1, start: 'new', ordered: false });
      await transport.flush();
      for (const id of ['seen-before', 'new-one']) await transport.publish('events.domain.store.x', new TextEncoder().encode(id), id);
      await eventually(() => expect(recorded).toEqual(['new-one']));
      expect(handled).toEqual(['new-one']);
    } finally {
      await transport.close();
    }
  });
});

describe('NATS transport connection handling', () => {
  it('fails to connect to a dead port within the timeout, naming the server', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const transport = new NatsTransport(resolveEventBusOptions({ nats: { servers: url, connectTimeoutMs: 500 } }, {}).nats);
    await expect(transport.connect()).rejects.toThrow(NatsConnectError);
    await expect(transport.connect()).rejects.toThrow(`cannot connect to NATS at ${url}`);
  });

  it('reconnects by itself after a server restart, reports it, and delivers again', async () => {
    const own = await NatsServer.start();
    const [publisher, subscriber] = await connected(() => new NatsTransport(options(`r${instances++}`, 'nats', own.url).nats), 2);
    try {
      const received: string[] = [];
      subscriber.subscribe('restart.x', undefined, (subject) => (received.push(subject), undefined), { attempts: 1, start: 'new', ordered: false });
      await subscriber.flush();
      expect(subscriber.status()).toMatchObject({ transport: 'nats', connected: true, disconnects: 0, reconnects: 0 });
      await own.kill();
      await eventually(() => expect(subscriber.status()).toMatchObject({ connected: false, disconnects: 1 }));
      await own.restart();
      await eventually(() => {
        for (const t of [publisher, subscriber]) expect(t.status()).toMatchObject({ connected: true, reconnects: 1 });
      });
      await eventually(async () => {
        publisher.publish('restart.x', new TextEncoder().encode('{}'), 'x');
        await publisher.flush();
        expect(received.length).toBeGreaterThan(0);
      });
    } finally {
      await Promise.all([publisher.close(), subscriber.close()]);
      await own.dispose();
    }
  });
});
