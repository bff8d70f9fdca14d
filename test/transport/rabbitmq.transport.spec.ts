import { fileURLToPath } from 'node:url';
import { nextEventId } from '../../lib/event-id.js';
import { createTransport } from '../../lib/create-transport.js';
import {
  DecodeError,
  PublishTimeoutError,
  RabbitMqConnectError,
  resolveEventBusOptions,
  type DeadLetter,
  type DeliveryOptions,
  type EventBusModuleOptions,
  type EventTransport,
  type TransportPayload,
} from '../../lib/index.js';
import { ChildProcessInstance, eventually } from '../support/instances.js';
import { freePort } from '../support/nats-server.js';
import { RabbitMqServer } from '../support/rabbitmq-server.js';
import { expectOutageInStatus } from '../support/outage-status.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { describeTransportConformance } from './transport-conformance.js';

let server: RabbitMqServer;
beforeAll(async () => {
  server = await RabbitMqServer.start();
}, 120_000);
afterAll(() => server?.dispose(), 60_000);

/** A transport as the module creates it, from options in code only. */
const create = (options: EventBusModuleOptions) => createTransport(resolveEventBusOptions(options, {}), options, {});
let instances = 0;
const transport = (rabbitmq: EventBusModuleOptions['rabbitmq'] = {}) =>
  create({
    transport: 'rabbitmq',
    instanceId: `r${instances++}`,
    // The archive on, so that groups can start from history (the conformance suite's start positions).
    rabbitmq: { url: server.url, reconnectDelayMs: 100, archiveMaxAgeMs: 600_000, ...rabbitmq },
    retry: { initialDelayMs: 20, maxDelayMs: 100 },
  });

async function connected(count: number, rabbitmq?: EventBusModuleOptions['rabbitmq']): Promise<EventTransport[]> {
  const transports = Array.from({ length: count }, () => transport(rabbitmq));
  await Promise.all(transports.map((t) => t.connect()));
  return transports;
}

/** Closes the connection abruptly, as a SIGKILL would: no acks, no goodbye. */
const crash = async (t: EventTransport) => (t as unknown as { connection: { unsafeDestroy(): void } }).connection.unsafeDestroy();

// Built apart from the call, so that the durable cases' fields (durable, crash) need no change here once the suite has them.
const target = {
  prefix: 'events.domain',
  echoesOwnBroadcast: true,
  durable: true,
  crash,
  connect: (count: number) => connected(count),
  async teardown() {},
};
describeTransportConformance('RabbitMQ', () => target);

const encoder = new TextEncoder();
const numberOf = (payload: TransportPayload) => JSON.parse(new TextDecoder().decode(payload as Uint8Array)).n as number;
const message = (n: number) => encoder.encode(JSON.stringify({ n }));
const durable = (attempts: number, extra: Partial<DeliveryOptions> = {}): DeliveryOptions => ({ attempts, start: 'new', ordered: false, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const instanceIdOf = (t: EventTransport) => (t as unknown as { config: { instanceId: string } }).config.instanceId;

interface Call {
  n: number;
  attempt: number;
  at: number;
}

function recording(calls: Call[], fails: (call: Call) => boolean = () => false) {
  return (_subject: string, payload: TransportPayload, attempt: number) => {
    const call = { n: numberOf(payload), attempt, at: Date.now() };
    calls.push(call);
    return fails(call) ? Promise.reject(new Error(`fails on purpose: ${call.n} attempt ${attempt}`)) : Promise.resolve();
  };
}

async function lettersOf(t: EventTransport, subject: string): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  let after: string | undefined;
  do {
    const page = await t.deadLetters!.list({ after, limit: 2 });
    letters.push(...page.letters.filter((l) => l.subject === subject));
    after = page.next;
  } while (after !== undefined);
  return letters;
}

describe('RabbitMQ transport: durable delivery', () => {
  let transports: EventTransport[];
  let test = 0;
  let subject: (suffix: string) => string;

  beforeEach(async () => {
    transports = await connected(3);
    const token = `d${test++}`;
    subject = (suffix) => `events.domain.${token}.${suffix}`;
  });
  afterEach(() => Promise.all(transports.map((t) => t.close())));

  it('retries a failing handler after a delay that grows, counting the attempts, and acks it once it succeeds', async () => {
    const [a, b] = transports;
    const calls: Call[] = [];
    a.subscribe(subject('retry'), 'retrying', recording(calls, (c) => c.attempt < 4), durable(5));
    await a.flush();
    await b.publish(subject('retry'), message(1), `${subject('retry')}-1`);
    await eventually(() => expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4]));
    // Delays from 20 ms, doubled (with jitter: at least half of it), through a TTL queue: never an immediate requeue.
    const waits = calls.slice(1).map((c, i) => c.at - calls[i].at);
    waits.forEach((wait, i) => expect(wait).toBeGreaterThanOrEqual(Math.min(100, 20 * 2 ** i) / 2 - 10));
    await sleep(300);
    expect(calls).toHaveLength(4); // acked after the success
  });

  it('dead-letters after the last attempt with the reason; lists in pages; a replay goes to that group only and leaves the dead letters', async () => {
    const [a, b] = transports;
    const store = a.deadLetters!;
    const before = await store.count();
    let healed = false;
    const [failing, other]: Call[][] = [[], []];
    a.subscribe(subject('dead'), 'gives-up', recording(failing, () => !healed), durable(2));
    b.subscribe(subject('dead'), 'other-group', recording(other), durable(2));
    await Promise.all([a.flush(), b.flush()]);
    for (const n of [7, 8, 9]) await b.publish(subject('dead'), message(n), `${subject('dead')}-${n}`);
    const letters = await eventually(async () => {
      const found = await lettersOf(b, subject('dead'));
      expect(found).toHaveLength(3);
      return found;
    });
    expect(letters.map((l) => l.id).sort()).toEqual([7, 8, 9].map((n) => `${subject('dead')}-${n}`));
    for (const letter of letters) {
      expect(letter).toMatchObject({ group: 'gives-up', subject: subject('dead'), attempts: 2 });
      expect(letter.error).toMatch(/^Error: fails on purpose: \d attempt 2$/);
      expect(letter.time.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(await store.count()).toBe(before + 3);

    healed = true;
    const seven = letters.find((l) => l.id.endsWith('-7'))!;
    await store.replay([seven]);
    await eventually(() => expect(failing.filter((c) => c.n === 7).map((c) => c.attempt)).toEqual([1, 2, 1]));
    expect(await store.count()).toBe(before + 2);
    expect((await lettersOf(a, subject('dead'))).map((l) => l.id)).not.toContain(seven.id);
    await store.replay(await lettersOf(a, subject('dead')));
    await eventually(async () => expect(await store.count()).toBe(before));
    await sleep(300); // a replay that reached the other group too would arrive now
    expect(other.map((c) => c.n).sort()).toEqual([7, 8, 9]);
  });

  it("retries, dead-letters and replays a group-less subscription on the instance's shared queue for that subscription only", async () => {
    const [a, b] = transports;
    let healed = false;
    const [failing, sibling]: Call[][] = [[], []];
    a.subscribe(subject('own.*'), undefined, recording(failing, () => !healed), durable(2));
    a.subscribe(subject('own.>'), undefined, recording(sibling), durable(2)); // the same event, on the same queue
    await a.flush();
    await b.publish(subject('own.k'), message(5), `${subject('own')}-5`);
    const [letter] = await eventually(async () => {
      const found = await lettersOf(a, subject('own.k'));
      expect(found).toHaveLength(1);
      return found;
    });
    expect(failing.map((c) => c.attempt)).toEqual([1, 2]);
    expect(letter).toMatchObject({ group: `instance-${instanceIdOf(a)}`, attempts: 2 });
    healed = true;
    await a.deadLetters!.replay([letter]);
    await eventually(() => expect(failing.map((c) => c.attempt)).toEqual([1, 2, 1]));
    await sleep(300);
    expect(sibling).toEqual([expect.objectContaining({ n: 5, attempt: 1 })]);
  });

  it('dead-letters a message its handler cannot decode at once, without retrying it', async () => {
    const [a, b] = transports;
    const calls: Call[] = [];
    a.subscribe(subject('undecodable'), 'decoding', (_s, payload, attempt) => (calls.push({ n: numberOf(payload), attempt, at: 0 }), Promise.reject(new DecodeError('malformed', 'not an event'))), durable(5));
    await a.flush();
    await b.publish(subject('undecodable'), message(3), `${subject('undecodable')}-3`);
    const [letter] = await eventually(async () => {
      const found = await lettersOf(a, subject('undecodable'));
      expect(found).toHaveLength(1);
      return found;
    });
    expect(letter).toMatchObject({ attempts: 1, group: 'decoding' });
    expect(letter.error).toBe('DecodeError: not an event');
    expect(calls.map((c) => c.attempt)).toEqual([1]);
  });

  it("gives a crashed member's unacknowledged message to another member, counted as a second delivery", async () => {
    const [a, b, c] = transports;
    const onA: Call[] = [];
    let release!: () => void;
    const hung = new Promise<void>((resolve) => (release = resolve));
    a.subscribe(subject('crash'), 'survivors', (_s, payload, attempt) => (onA.push({ n: numberOf(payload), attempt, at: 0 }), hung), durable(5));
    await a.flush();
    await c.publish(subject('crash'), message(1), `${subject('crash')}-1`);
    await eventually(() => expect(onA.map((call) => call.n)).toEqual([1]));
    const onB: Call[] = [];
    b.subscribe(subject('crash'), 'survivors', recording(onB), durable(5));
    await b.flush();
    try {
      await crash(a);
      await eventually(() => expect(onB.map((call) => [call.n, call.attempt])).toEqual([[1, 2]]), 30_000);
    } finally {
      release();
    }
  });

  it("retries an ordered group's failing event in place: no later event overtakes it, on any member", async () => {
    const [a, b, c] = transports;
    const calls: string[] = [];
    const handler = (_s: string, payload: TransportPayload, attempt: number) => {
      const n = numberOf(payload);
      calls.push(`${n}/${attempt}`);
      return sleep(2).then(() => {
        if (n === 3 && attempt === 1) throw new Error('fails once on purpose');
      });
    };
    a.subscribe(subject('ordered'), 'in-order', handler, durable(3, { ordered: true }));
    b.subscribe(subject('ordered'), 'in-order', handler, durable(3, { ordered: true }));
    await Promise.all([a.flush(), b.flush()]);
    await Promise.all(Array.from({ length: 10 }, (_, n) => c.publish(subject('ordered'), message(n), `${subject('ordered')}-${n}`)));
    await eventually(() => expect(calls).toHaveLength(11));
    expect(calls).toEqual(['0/1', '1/1', '2/1', '3/1', '3/2', '4/1', '5/1', '6/1', '7/1', '8/1', '9/1']);
  });

  it('sends an event id re-published within the window once, and handles it once per group', async () => {
    const [a, b, c] = transports;
    const [shared, single]: Call[][] = [[], []];
    a.subscribe(subject('dup'), 'dedupe-shared', recording(shared), durable(1));
    b.subscribe(subject('dup'), 'dedupe-shared', recording(shared), durable(1));
    c.subscribe(subject('dup'), 'dedupe-single', recording(single), durable(1));
    await Promise.all(transports.map((t) => t.flush()));
    for (const n of [1, 2]) await c.publish(subject('dup'), message(n), `${subject('dup')}-same-id`);
    await c.publish(subject('dup'), message(3), `${subject('dup')}-other-id`);
    // An id made in this process (as the outbox makes a row's), sent twice as its relay may: also once.
    const rowId = nextEventId();
    for (const n of [4, 5]) await c.publish(subject('dup'), message(n), rowId);
    await eventually(() => expect([shared.length, single.length]).toEqual([3, 3]));
    await sleep(300);
    expect([shared.map((x) => x.n).sort(), single.map((x) => x.n).sort()]).toEqual([[1, 3, 4], [1, 3, 4]]);
  });

  it('gives an event published right after a subscribe on the same instance to that subscription (no flush between)', async () => {
    const [a] = transports;
    const calls: Call[] = [];
    a.subscribe(subject('fresh.*'), undefined, recording(calls), durable(1));
    await a.publish(subject('fresh.k'), message(1), `${subject('fresh')}-1`);
    await eventually(() => expect(calls.map((c) => c.n)).toEqual([1]));
  });

  it("starts a new group from the archive with every event kept ('all'), from a time, or with new events only; an existing one keeps its place", async () => {
    const [a, b, c] = transports;
    const numbers = (calls: Call[]) => calls.map((call) => call.n);
    await Promise.all([0, 1].map((n) => b.publish(subject('start'), message(n), `${subject('start')}-${n}`)));
    await b.publish(subject('other'), message(99), `${subject('other')}-99`); // another subject: not copied
    await sleep(50);
    const between = new Date();
    await sleep(50);
    await b.publish(subject('start'), message(2), `${subject('start')}-2`);
    const [all, since, fresh]: Call[][] = [[], [], []];
    a.subscribe(subject('start'), 'from-all', recording(all), durable(1, { start: 'all' }));
    a.subscribe(subject('start'), 'from-time', recording(since), durable(1, { start: between }));
    a.subscribe(subject('start'), 'from-now', recording(fresh), durable(1, { start: 'new' }));
    await a.flush();
    await b.publish(subject('start'), message(3), `${subject('start')}-3`);
    await eventually(() => expect([numbers(all), numbers(since), numbers(fresh)]).toEqual([[0, 1, 2, 3], [2, 3], [3]]));
    // Another member of the group: its queue exists, so nothing is copied again.
    const again: Call[] = [];
    c.subscribe(subject('start'), 'from-all', recording(again), durable(1, { start: 'all' }));
    await c.flush();
    await b.publish(subject('start'), message(4), `${subject('start')}-4`);
    await eventually(() => expect([...numbers(all), ...numbers(again)].filter((n) => n === 4)).toEqual([4]));
    await sleep(300);
    expect([...numbers(all), ...numbers(again)].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("refuses start 'all' or a Date at subscribe time without the archive, and for a group-less subscription, saying why", async () => {
    const plain = transport({ exchange: 'no-archive', archiveMaxAgeMs: 0 });
    await plain.connect();
    try {
      for (const start of ['all', new Date(0)] as const) {
        expect(() => plain.subscribe(subject('start'), 'late', () => undefined, durable(1, { start }))).toThrow(
          /a RabbitMQ queue receives only the events routed to it once it exists, and keeps no history to start from; use start 'new' \(the default\), or keep history in the archive stream \(RABBITMQ_ARCHIVE_MAX_AGE_MS/,
        );
      }
    } finally {
      await plain.close();
    }
    expect(() => transports[0].subscribe(subject('start'), undefined, () => undefined, durable(1, { start: 'all' }))).toThrow(
      `cannot subscribe to ${subject('start')} with start 'all': on RabbitMQ only a group starts from history`,
    );
  });

  it('refuses a group whose queue exists with other arguments, naming the queue', async () => {
    const [a, b] = transports;
    a.subscribe(subject('args'), 'shape', () => undefined, durable(1));
    await a.flush();
    b.subscribe(subject('args'), 'shape', () => undefined, durable(1, { ordered: true }));
    const failure: Error = await b.flush().then(() => new Error('flushed'), (error: Error) => error);
    expect(failure.message).toContain(`cannot consume ${subject('args')} from queue domain-events.group.shape.${subject('args')}: `);
    expect(failure.message).toContain("PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer'");
    expect(failure.message).toContain('the queue exists with other arguments');
  });

  it('reports its connection', () => {
    expect(transports[0].status()).toEqual({
      transport: 'rabbitmq',
      connected: true,
      server: `amqp://127.0.0.1:${server.port} vhost /`,
      disconnects: 0,
      reconnects: 0,
      lastError: undefined,
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });
});

describe('RabbitMQ transport: connecting', () => {
  it('fails to connect to a dead port within the timeout, naming the server without its password', async () => {
    const port = await freePort();
    const t = create({ transport: 'rabbitmq', rabbitmq: { url: `amqp://guest:secret@127.0.0.1:${port}/prod`, connectTimeoutMs: 500 } });
    const failure = t.connect();
    await expect(failure).rejects.toThrow(RabbitMqConnectError);
    await expect(failure).rejects.toThrow(`cannot connect to RabbitMQ at amqp://127.0.0.1:${port} vhost prod`);
    await expect(failure).rejects.not.toThrow('secret');
  });

  it('refuses to start without the client package, saying what to install', async () => {
    const hide = fileURLToPath(new URL('../support/hide-rabbitmq-client.mjs', import.meta.url));
    const { code, stderr } = await ChildProcessInstance.failToStart({
      EVENT_BUS_TRANSPORT: 'rabbitmq',
      RABBITMQ_URL: server.url,
      NODE_OPTIONS: `--import=${hide}`,
    });
    expect(code).not.toBe(0);
    expect(stderr).toContain('EVENT_BUS_TRANSPORT=rabbitmq needs the RabbitMQ client: npm install rabbitmq-client');
  });

  it('rejects a publish the broker did not confirm within the publish timeout with a PublishTimeoutError', async () => {
    const proxy = await TcpProxy.start(server.port);
    const t = create({ transport: 'rabbitmq', rabbitmq: { url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, publishTimeoutMs: 500, reconnectDelayMs: 100 } });
    try {
      await t.connect();
      await proxy.down();
      const failure = await (t.publish('events.domain.Lost', message(1), 'lost-1') as Promise<unknown>).then(() => undefined, (error: Error) => error);
      expect(failure).toBeInstanceOf(PublishTimeoutError);
      expect(failure!.message).toMatch(/^cannot publish to events\.domain\.Lost: RabbitMQ did not confirm it within 500 ms \(disconnected/);
    } finally {
      await proxy.up();
      await t.close();
      await proxy.dispose();
    }
  });

  it('says in status() since when the connection is down, and the last error with its time; then since when it is back', async () => {
    await expectOutageInStatus(server.port, (port) =>
      create({ transport: 'rabbitmq', rabbitmq: { url: `amqp://guest:guest@127.0.0.1:${port}`, reconnectDelayMs: 100, reconnectMaxDelayMs: 200 } }),
    );
  }, 30_000);

  it('names a bad setting', () => {
    expect(() => create({ transport: 'rabbitmq', rabbitmq: { url: 'http://x' } })).toThrow('option rabbitmq.url: "http://x" is not an AMQP URL');
    const env = { EVENT_BUS_TRANSPORT: 'rabbitmq', RABBITMQ_QUEUE_TYPE: 'lazy' };
    expect(() => createTransport(resolveEventBusOptions({}, env), {}, env)).toThrow(
      'environment variable RABBITMQ_QUEUE_TYPE: expected "quorum", "classic", got "lazy"',
    );
  });
});
