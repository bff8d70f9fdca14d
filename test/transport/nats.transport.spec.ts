import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { resolveJetStreamOptions } from '../../lib/transport/jetstream/jetstream-options.js';
import { ensureEventStreams } from '../../lib/transport/jetstream/jetstream-streams.js';
import { createTransport } from '../../lib/create-transport.js';
import {
  NatsConnectError,
  PublishTimeoutError,
  resolveEventBusOptions,
  TransportClosedError,
  type EventBusModuleOptions,
  type EventTransport,
  type TransportPayload,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { freePort, NatsServer } from '../support/nats-server.js';
import { expectOutageInStatus } from '../support/outage-status.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { describeTransportConformance } from './transport-conformance.js';

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server.dispose());

/** A transport as the module creates it, from options in code only. */
const create = (options: EventBusModuleOptions) => createTransport(resolveEventBusOptions(options, {}), options, {});
const transport = (instanceId: string, name: 'nats' | 'jetstream', servers = server.url) =>
  create({
    transport: name,
    instanceId,
    nats: { servers, reconnectTimeWaitMs: 100 },
    // Short enough for the durable cases: a crashed member's message comes back after the ack wait.
    jetstream: { ackWaitMs: 1_000 },
    retry: { initialDelayMs: 20, maxDelayMs: 100 },
  });

async function connected(create: (i: number) => EventTransport, count: number): Promise<EventTransport[]> {
  const transports = Array.from({ length: count }, (_, i) => create(i));
  await Promise.all(transports.map((t) => t.connect()));
  return transports;
}

let instances = 0;
describeTransportConformance('core NATS', () => ({
  prefix: 'conformance',
  echoesOwnBroadcast: true,
  durable: false,
  connect: (count) => connected(() => transport(`n${instances++}`, 'nats'), count),
  async teardown() {},
}));

describeTransportConformance('JetStream', () => ({
  prefix: 'events.domain',
  echoesOwnBroadcast: true,
  durable: true,
  connect: (count) => connected(() => transport(`j${instances++}`, 'jetstream'), count),
  // The connection closed without a drain: nothing more is acked, as after a SIGKILL.
  crash: (js) => (js as unknown as { connection: NatsConnection }).connection.close(),
  async teardown() {},
}));

describe('JetStream transport with an idempotency store of its own', () => {
  it('skips what the store has seen, and records what it handled', async () => {
    const recorded: string[] = [];
    const store = {
      seen: async (_consumer: string, id: string) => id === 'seen-before',
      record: async (_consumer: string, id: string) => void recorded.push(id),
    };
    const js = create({ transport: 'jetstream', instanceId: `s${instances++}`, nats: { servers: server.url }, jetstream: { idempotencyStore: store } });
    await js.connect();
    try {
      const handled: string[] = [];
      const handler = (_subject: string, payload: TransportPayload) => (handled.push(new TextDecoder().decode(payload as Uint8Array)), undefined);
      js.subscribe('events.domain.store.x', 'store-group', handler, { attempts: 1, start: 'new', ordered: false });
      await js.flush();
      for (const id of ['seen-before', 'new-one']) await js.publish('events.domain.store.x', new TextEncoder().encode(id), id);
      await eventually(() => expect(recorded).toEqual(['new-one']));
      expect(handled).toEqual(['new-one']);
    } finally {
      await js.close();
    }
  });
});

describe('JetStream streams created by instances starting together', () => {
  it('go on with the stream another instance created between their look and their create, with their own limits', async () => {
    const own = await NatsServer.start();
    const [ours, theirs] = [await connect({ servers: own.url }), await connect({ servers: own.url })];
    try {
      const [jsm, other] = [await jetstreamManager(ours), await jetstreamManager(theirs)];
      // The other instance wins the race, with limits of its own: the server refuses our create.
      const racing = {
        streams: {
          info: (name: string) => jsm.streams.info(name),
          update: (name: string, config: Partial<StreamConfig>) => jsm.streams.update(name, config),
          add: async (config: Partial<StreamConfig> & { name: string }) => {
            await other.streams.add({ ...config, max_msgs: 10 });
            return jsm.streams.add(config);
          },
        },
      } as unknown as JetStreamManager;
      const options = resolveJetStreamOptions({ maxMessages: 1_000 }, {});
      await ensureEventStreams(racing, 'events.domain', options);
      expect((await jsm.streams.info(options.stream)).config.max_msgs).toBe(1_000);
      expect((await jsm.streams.info(`${options.stream}_DLQ`)).config.subjects).toEqual(['dlq.events.domain.>']);
    } finally {
      await Promise.all([ours.close(), theirs.close()]);
      await own.dispose();
    }
  });
});

describe('JetStream group consumer deleted under its members', () => {
  it('is created again from where the group stood: what was published while it was gone is delivered', async () => {
    const proxy = await TcpProxy.start(server.port);
    const member = transport(`g${instances++}`, 'jetstream', proxy.url);
    const raw = await connect({ servers: server.url });
    try {
      await member.connect();
      const handled: string[] = [];
      const handler = (_subject: string, payload: TransportPayload) => (handled.push(new TextDecoder().decode(payload as Uint8Array)), undefined);
      // A member that has received nothing yet, so knows no stream sequence of its own.
      member.subscribe('events.domain.gone.x', 'gone-group', handler, { attempts: 1, start: 'new', ordered: false });
      await member.flush();
      // While it cannot see it: the consumer goes, and events are published.
      await proxy.down();
      await eventually(() => expect(member.status().connected).toBe(false));
      const jsm = await jetstreamManager(raw);
      for await (const consumer of jsm.consumers.list('DOMAIN_EVENTS')) {
        if (consumer.name.startsWith('gone-group__')) await jsm.consumers.delete('DOMAIN_EVENTS', consumer.name);
      }
      for (const id of ['while-gone-0', 'while-gone-1', 'while-gone-2']) await jetstream(raw).publish('events.domain.gone.x', id, { msgID: id });
      await proxy.up();
      await eventually(() => expect(handled).toEqual(['while-gone-0', 'while-gone-1', 'while-gone-2']), 20_000);
    } finally {
      await member.close();
      await raw.close();
      await proxy.dispose();
    }
  }, 30_000);
});

describe('JetStream publishes bounded by the publish timeout', () => {
  const body = new TextEncoder().encode('{}');
  // No stream captures this subject: the server answers as it does while a stream has no leader.
  const uncaptured = 'elsewhere.x';

  it('retries a publish no stream leader answers until the timeout, then rejects saying why', async () => {
    const js = create({ transport: 'jetstream', instanceId: `p${instances++}`, nats: { servers: server.url }, jetstream: { publishTimeoutMs: 1_500 } });
    await js.connect();
    try {
      const started = Date.now();
      const failure = await (js.publish(uncaptured, body, 'lost-1') as Promise<unknown>).then(() => undefined, (error: Error) => error);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
      expect(failure).toBeInstanceOf(PublishTimeoutError);
      expect(failure!.message).toMatch(/^the stream did not store elsewhere\.x within 1500 ms \(\d+ attempts, the last: no responders\): no stream leader answered/);
      expect(failure!.message).toContain('EVENT_BUS_PUBLISH_TIMEOUT_MS');
      // A publish the stream captures goes through meanwhile.
      await expect(js.publish('events.domain.timeout.ok', body, 'ok-1')).resolves.toMatchObject({ stream: 'DOMAIN_EVENTS' });
    } finally {
      await js.close();
    }
  });

  it('rejects at once a publish the stream answers with an error, with the stream\'s reason', async () => {
    const js = create({ transport: 'jetstream', instanceId: `p${instances++}`, nats: { servers: server.url }, jetstream: { publishTimeoutMs: 20_000 } });
    await js.connect();
    try {
      const started = Date.now();
      // A header the stream checks: the publish is for another stream, which it refuses (not an error to retry).
      const failure = await (js.publish('events.domain.expect.x', body, 'expected-1', [['Nats-Expected-Stream', ['ANOTHER']]]) as Promise<unknown>).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(failure?.name).toBe('JetStreamApiError');
      expect(failure!.message).toMatch(/expected stream does not match/i);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await js.close();
    }
  });

  it('rejects at once a publish awaiting its ack when the connection closes for good, rather than at its timeout', async () => {
    const own = await NatsServer.start();
    const js = create({ transport: 'jetstream', instanceId: `p${instances++}`, nats: { servers: own.url }, jetstream: { publishTimeoutMs: 20_000 } });
    await js.connect();
    try {
      own.pause(); // no ack comes now
      const started = Date.now();
      const failure = (js.publish('events.domain.closed.x', body, 'closed-1') as Promise<unknown>).then(() => undefined, (error: Error) => error);
      await (js as unknown as { connection: NatsConnection }).connection.close();
      expect(await failure).toBeInstanceOf(TransportClosedError);
      expect((await failure)!.message).toContain('the NATS connection closed before the stream acknowledged the publish');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      own.resume();
      await js.close();
      await own.dispose();
    }
  });

  it('rejects at once a publish the server refuses to take (a permissions violation), with the server\'s reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nats-perms-'));
    const config = join(dir, 'nats.conf');
    // Allowed the stream's API, replies and events, except one subject.
    writeFileSync(config, `authorization { users = [ { user: app, password: p4ss, permissions: {
      publish: { allow: ["$JS.API.>", "$JS.ACK.>", "_INBOX.>", "events.domain.>"], deny: ["events.domain.forbidden.>"] }, subscribe: ">" } } ] }\n`);
    const own = await NatsServer.start(['-c', config]);
    const js = create({ transport: 'jetstream', instanceId: `p${instances++}`, nats: { servers: own.url, user: 'app', password: 'p4ss' }, jetstream: { publishTimeoutMs: 20_000 } });
    try {
      await js.connect();
      const started = Date.now();
      const failure = await (js.publish('events.domain.forbidden.x', body, 'refused-1') as Promise<unknown>).then(() => undefined, (error: Error) => error);
      expect(failure?.name).toBe('PermissionViolationError');
      expect(failure!.message).toContain('events.domain.forbidden.x');
      // Not retried until the publish timeout: the refusal is final.
      expect(Date.now() - started).toBeLessThan(10_000);
      await expect(js.publish('events.domain.allowed.x', body, 'allowed-1')).resolves.toMatchObject({ stream: 'DOMAIN_EVENTS' });
    } finally {
      await js.close();
      await own.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects what is still being retried when the transport closes, within the shutdown timeout', async () => {
    const js = create({ transport: 'jetstream', instanceId: `p${instances++}`, nats: { servers: server.url }, shutdownTimeoutMs: 200 });
    await js.connect();
    const retrying = (js.publish(uncaptured, body, 'lost-2') as Promise<unknown>).then(() => undefined, (error: Error) => error);
    await eventually(() => expect((js.status() as { publishes?: { retrying: number } }).publishes?.retrying).toBe(1));
    await js.close();
    const failure = await retrying;
    expect(failure).toBeInstanceOf(TransportClosedError);
    expect(failure!.message).toContain('closed before the stream stored the event');
  });
});

describe('NATS transport connection handling', () => {
  it('fails to connect to a dead port within the timeout, naming the server', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const nats = create({ transport: 'nats', nats: { servers: url, connectTimeoutMs: 500 } });
    await expect(nats.connect()).rejects.toThrow(NatsConnectError);
    await expect(nats.connect()).rejects.toThrow(`cannot connect to NATS at ${url}`);
  });

  it('reconnects by itself after a server restart, reports it, and delivers again', async () => {
    const own = await NatsServer.start();
    const [publisher, subscriber] = await connected(() => transport(`r${instances++}`, 'nats', own.url), 2);
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

  it('says in status() since when the connection is down, and the last error with its time; then since when it is back', async () => {
    await expectOutageInStatus(server.port, (port) => transport(`o${instances++}`, 'nats', `nats://127.0.0.1:${port}`));
  }, 30_000);

  it('refuses at publish, also while reconnecting, what the server would answer by closing the connection', async () => {
    const own = await NatsServer.start();
    const proxy = await TcpProxy.start(own.port);
    const nats = transport(`v${instances++}`, 'nats', proxy.url);
    await nats.connect();
    try {
      const tooBig = new Uint8Array(1024 * 1024 + 1); // the server's default max_payload is 1 MiB
      const longSubject = `long.${'x'.repeat(4100)}`; // the server's control line holds 4096 bytes
      const tryBoth = () => {
        expect(() => nats.publish('ok.subject', tooBig, 'big')).toThrow(/max_payload of 1048576/);
        expect(() => nats.publish(longSubject, new Uint8Array(1), 'long')).toThrow(/control line/);
        expect(() => nats.publish('has space', new Uint8Array(1), 'space')).toThrow(/not a NATS subject/);
      };
      tryBoth();
      await proxy.down(); // nats.js forgets the server's INFO while reconnecting and checks nothing then
      await eventually(() => expect(nats.status().connected).toBe(false));
      tryBoth();
      expect(nats.status().bufferedPublishes).toBe(0);
    } finally {
      await proxy.dispose();
      await nats.close();
      await own.dispose();
    }
  });
});
