import { DecodeError, TransportClosedError, type DeadLetter, type DeadLetterStore, type DeliveryOptions, type EventTransport, type MessageHeaders, type TransportPayload } from '../../lib/index.js';
import { eventually } from '../support/instances.js';

/** A transport under test: connected instances sharing one broker, as application instances would. */
export interface ConformanceTarget {
  /** Subjects the suite may use start with this (a JetStream stream only stores its own prefix). */
  readonly prefix: string;
  /** NATS delivers a connection's own publishes to its broadcast subscriptions; the memory broker does not. */
  readonly echoesOwnBroadcast: boolean;
  /** Whether it redelivers (its `redelivers`): the durable cases run then. */
  readonly durable: boolean;
  connect(count: number): Promise<EventTransport[]>;
  /** Durable transports: closes it abruptly, as a SIGKILL would — no acks, no goodbye. */
  crash?(transport: EventTransport): Promise<void>;
  teardown(): Promise<void>;
}

const DELIVERY: DeliveryOptions = { attempts: 1, start: 'new', ordered: false };
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const numberOf = (payload: TransportPayload): number =>
  payload instanceof Uint8Array ? JSON.parse(decoder.decode(payload)).n : (payload.event as { n: number }).n;

/** What a subscription received: the `n` of each message, in order. */
class Inbox {
  readonly received: number[] = [];

  readonly handler = (_subject: string, payload: TransportPayload) => {
    this.received.push(numberOf(payload));
    return undefined;
  };
}

function message(transport: EventTransport, n: number) {
  const body = { n };
  return transport.encodes ? encoder.encode(JSON.stringify(body)) : { event: body, id: `m${n}`, type: 'T', source: '/s', time: '', origin: 'o', key: undefined };
}

function publishAll(transport: EventTransport, subject: string, numbers: number[]): Promise<unknown> {
  return Promise.all(numbers.map((n) => transport.publish(subject, message(transport, n), `${subject}-${n}`)));
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/**
 * The behaviour the event bus relies on, for every transport (after Watermill's conformance
 * suite): broadcast, queue groups, NATS wildcard rules, order, unsubscribe, close.
 */
export function describeTransportConformance(name: string, target: () => ConformanceTarget): void {
  describe(`transport conformance: ${name}`, () => {
    let t: ConformanceTarget;
    let transports: EventTransport[];
    let testNo = 0;
    let subject: (suffix: string) => string;

    beforeEach(async () => {
      t = target();
      transports = [];
      transports = await t.connect(3);
      const token = `t${testNo++}`;
      subject = (suffix) => `${t.prefix}.${token}.${suffix}`;
    });

    afterEach(async () => {
      await Promise.all(transports.map((transport) => transport.close()));
      await t.teardown();
    });

    const flushAll = () => Promise.all(transports.map((transport) => transport.flush()));

    it('broadcasts every message to every subscriber, in publish order', async () => {
      const [a, b, c] = transports;
      const [inA, inB, inC] = [new Inbox(), new Inbox(), new Inbox()];
      a.subscribe(subject('x'), undefined, inA.handler, DELIVERY);
      b.subscribe(subject('x'), undefined, inB.handler, DELIVERY);
      c.subscribe(subject('y'), undefined, inC.handler, DELIVERY);
      await flushAll();
      await publishAll(c, subject('x'), range(0, 1_000));
      await eventually(() => {
        expect(inA.received).toEqual(range(0, 1_000));
        expect(inB.received).toEqual(range(0, 1_000));
      });
      expect(inC.received).toEqual([]);
    });

    it(`gives a publisher its own broadcasts back: ${target().echoesOwnBroadcast}`, async () => {
      const [a, b] = transports;
      const [own, others] = [new Inbox(), new Inbox()];
      a.subscribe(subject('x'), undefined, own.handler, DELIVERY);
      b.subscribe(subject('x'), undefined, others.handler, DELIVERY);
      await flushAll();
      await publishAll(a, subject('x'), [1, 2]);
      await eventually(() => expect(others.received).toEqual([1, 2]));
      await a.flush();
      expect(own.received).toEqual(t.echoesOwnBroadcast ? [1, 2] : []);
    });

    it('delivers each message to exactly one member of a queue group, and to every group', async () => {
      const billing = transports.map(() => new Inbox());
      const audit = new Inbox();
      transports.forEach((transport, i) => transport.subscribe(subject('order'), 'billing', billing[i].handler, DELIVERY));
      transports[2].subscribe(subject('order'), 'audit', audit.handler, DELIVERY);
      await flushAll();
      await publishAll(transports[0], subject('order'), range(0, 60));
      await eventually(() => expect(billing.flatMap((inbox) => inbox.received)).toHaveLength(60));
      await eventually(() => expect(audit.received).toEqual(range(0, 60)));
      await flushAll();
      expect(billing.flatMap((inbox) => inbox.received).sort((x, y) => x - y)).toEqual(range(0, 60));
      // A publisher is a member like any other: its own queue subscription may get its messages.
      expect(billing[0].received.length + billing[1].received.length + billing[2].received.length).toBe(60);
    });

    it('matches wildcards exactly as nats-server does', async () => {
      // Expected by NATS rules, written out rather than computed, so that the table checks the matcher.
      const table: Record<string, string[]> = {
        '*': ['a'],
        '>': ['a', 'a.b', 'a.b.c', 'x.b'],
        'a.*': ['a.b'],
        '*.b': ['a.b', 'x.b'],
        'a.b': ['a.b'],
        'a.>': ['a.b', 'a.b.c'],
        '*.>': ['a.b', 'a.b.c', 'x.b'],
        'a.*.c': ['a.b.c'],
      };
      const subjects = ['a', 'a.b', 'a.b.c', 'x.b'];
      const inboxes = Object.keys(table).map((pattern) => {
        const received: string[] = [];
        transports[0].subscribe(subject(pattern), undefined, (s) => (received.push(s.slice(subject('').length)), undefined), DELIVERY);
        return { pattern, received };
      });
      await flushAll();
      for (const s of subjects) await transports[1].publish(subject(s), message(transports[1], 0), subject(s));
      await eventually(() => {
        for (const { pattern, received } of inboxes) expect([pattern, [...received].sort()]).toEqual([pattern, table[pattern]]);
      });
    });

    it('stops delivering on unsubscribe', async () => {
      const [a, b] = transports;
      const [gone, stays] = [new Inbox(), new Inbox()];
      const subscription = a.subscribe(subject('x'), undefined, gone.handler, DELIVERY);
      a.subscribe(subject('x'), 'stays', stays.handler, DELIVERY);
      await flushAll();
      await publishAll(b, subject('x'), [1]);
      await eventually(() => expect(gone.received).toEqual([1]));
      subscription.unsubscribe();
      await a.flush();
      await publishAll(b, subject('x'), [2]);
      await eventually(() => expect(stays.received).toEqual([1, 2]));
      await a.flush();
      expect(gone.received).toEqual([1]);
    });

    it('stops receiving at shutdown: the group gets the rest, a running handler finishes before close, publishing goes on', async () => {
      const [a, b] = transports;
      const events: string[] = [];
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const slow = (_subject: string, payload: TransportPayload) => {
        if (payload) events.push('a:started');
        return released.then(() => void events.push('a:finished'));
      };
      a.subscribe(subject('job'), 'workers', slow, DELIVERY);
      await flushAll();
      await publishAll(b, subject('job'), [0]);
      await eventually(() => expect(events).toEqual(['a:started']));
      const others = new Inbox();
      b.subscribe(subject('job'), 'workers', others.handler, DELIVERY);
      await flushAll();
      await a.stopReceiving();
      await publishAll(a, subject('job'), range(1, 20)); // a still publishes
      await eventually(() => expect(others.received).toEqual(range(1, 20)));
      const closed = a.close().then(() => void events.push('a:closed'));
      await new Promise((r) => setTimeout(r, 50));
      release();
      await closed;
      expect(events).toEqual(['a:started', 'a:finished', 'a:closed']);
    });

    it('hands a message\'s headers to the handler as they were published, on a transport that carries them', async () => {
      const [a, b] = transports;
      if (!a.carriesHeaders) return;
      const received: Array<[string, string[]][]> = [];
      const handler = (_subject: string, _payload: TransportPayload, _attempt: number, headers: MessageHeaders | undefined) => {
        received.push([...(headers ?? [])].map(([name, values]) => [name, [...values]]));
        return undefined;
      };
      b.subscribe(subject('h'), undefined, handler, DELIVERY);
      await flushAll();
      const headers: MessageHeaders = [['ce-type', ['Moved']], ['ce-id', ['a%20b']]];
      await a.publish(subject('h'), message(a, 1), 'h-1', headers);
      await eventually(() => expect(received).toHaveLength(1));
      expect(received[0]).toEqual(expect.arrayContaining([['ce-type', ['Moved']], ['ce-id', ['a%20b']]]));
    });

    it('refuses to publish once closed', async () => {
      const [a] = transports;
      await a.close();
      expect(() => a.publish(subject('x'), message(a, 1), 'closed-1')).toThrow(TransportClosedError);
    });

    it('delivers what was published before a clean close', async () => {
      const [a, b] = transports;
      const inbox = new Inbox();
      b.subscribe(subject('x'), undefined, inbox.handler, DELIVERY);
      await flushAll();
      const published = publishAll(a, subject('x'), range(0, 500));
      await a.close();
      await published;
      await eventually(() => expect(inbox.received).toEqual(range(0, 500)));
    });

    it(`redelivers: ${target().durable}`, () => {
      expect(transports.map((transport) => transport.redelivers)).toEqual([t.durable, t.durable, t.durable]);
      if (t.durable) expect(transports.every((transport) => transport.deadLetters !== undefined)).toBe(true);
    });

    if (target().durable) describeDurableCases(() => ({ t, transports, subject }));
  });
}

interface DurableFixture {
  t: ConformanceTarget;
  transports: EventTransport[];
  subject: (suffix: string) => string;
}

/** One handler call of a durable case: which message, on which attempt. */
interface Call {
  n: number;
  attempt: number;
}

/** A handler that records its calls and fails (rejects) when `fails` says so. */
function recording(calls: Call[], fails: (call: Call) => boolean = () => false) {
  return (_subject: string, payload: TransportPayload, attempt: number) => {
    const call = { n: numberOf(payload), attempt };
    calls.push(call);
    return fails(call) ? Promise.reject(new Error(`fails on purpose: ${call.n} attempt ${attempt}`)) : Promise.resolve();
  };
}

/** Every dead letter of one subject, read page by page. */
async function lettersOf(store: DeadLetterStore, subject: string): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  let after: string | undefined;
  do {
    const page = await store.list({ after, limit: 50 });
    letters.push(...page.letters.filter((letter) => letter.subject === subject));
    after = page.next;
  } while (after !== undefined);
  return letters;
}

const durable = (attempts: number, extra: Partial<DeliveryOptions> = {}): DeliveryOptions => ({ attempts, start: 'new', ordered: false, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** At-least-once delivery: redelivery, attempts, dead letters and replay, start positions, crashed members, order, idempotency. */
function describeDurableCases(fixture: () => DurableFixture): void {
  describe('durable delivery', () => {
    it('redelivers a message whose handler failed, counting the attempts, until it succeeds', async () => {
      const { transports, subject } = fixture();
      const [a, b] = transports;
      const calls: Call[] = [];
      a.subscribe(subject('retry'), 'retrying', recording(calls, (c) => c.n === 1 && c.attempt < 3), durable(5));
      await a.flush();
      await publishAll(b, subject('retry'), [1]);
      await eventually(() => expect(calls.filter((c) => c.n === 1).map((c) => c.attempt)).toEqual([1, 2, 3]));
      await publishAll(b, subject('retry'), [2]);
      await eventually(() => expect(calls.some((c) => c.n === 2)).toBe(true));
      expect(calls.filter((c) => c.n === 1).map((c) => c.attempt)).toEqual([1, 2, 3]); // acked after the success: no 4th
    });

    it('dead-letters a message after its last attempt, with the reason; a replay goes back to that group only and leaves the dead letters', async () => {
      const { transports, subject } = fixture();
      const [a, b] = transports;
      const store = a.deadLetters!;
      const before = await store.count();
      let healed = false;
      const [failing, other]: Call[][] = [[], []];
      a.subscribe(subject('dead'), 'gives-up', recording(failing, () => !healed), durable(2));
      b.subscribe(subject('dead'), 'other-group', recording(other), durable(2));
      await Promise.all([a.flush(), b.flush()]);
      await b.publish(subject('dead'), message(b, 7), `${subject('dead')}-7`);
      const [letter] = await eventually(async () => {
        const letters = await lettersOf(store, subject('dead'));
        expect(letters).toHaveLength(1);
        return letters;
      });
      expect(failing.map((c) => c.attempt)).toEqual([1, 2]);
      expect(letter).toMatchObject({ id: `${subject('dead')}-7`, group: 'gives-up', subject: subject('dead'), attempts: 2 });
      expect(letter.error).toContain('fails on purpose: 7 attempt 2');
      expect(letter.time).toBeInstanceOf(Date);
      expect(await store.count()).toBe(before + 1);

      healed = true;
      await store.replay([letter]);
      await eventually(() => expect(failing.map((c) => c.attempt)).toEqual([1, 2, 1]));
      await eventually(async () => expect(await store.count()).toBe(before));
      expect(await lettersOf(store, subject('dead'))).toEqual([]);
      await sleep(300); // a replay that reached the other group too would arrive now
      expect(other).toEqual([{ n: 7, attempt: 1 }]);
    });

    it('dead-letters a message its handler cannot decode at once, without retrying it', async () => {
      const { transports, subject } = fixture();
      const [a, b] = transports;
      const calls: Call[] = [];
      a.subscribe(subject('undecodable'), 'decoding', (s, payload, attempt) => (calls.push({ n: numberOf(payload), attempt }), Promise.reject(new DecodeError('malformed', 'not an event'))), durable(5));
      await a.flush();
      await publishAll(b, subject('undecodable'), [3]);
      const [letter] = await eventually(async () => {
        const letters = await lettersOf(a.deadLetters!, subject('undecodable'));
        expect(letters).toHaveLength(1);
        return letters;
      });
      expect(letter).toMatchObject({ attempts: 1, group: 'decoding' });
      expect(letter.error).toContain('DecodeError: not an event');
      expect(calls).toEqual([{ n: 3, attempt: 1 }]);
    });

    it("starts a new group with new events only, with every stored event ('all'), or from a time", async () => {
      const { transports, subject } = fixture();
      const [a, b] = transports;
      await publishAll(b, subject('start'), [0, 1]);
      await sleep(50);
      const between = new Date();
      await sleep(50);
      await publishAll(b, subject('start'), [2]);
      const [all, since, fresh] = [new Inbox(), new Inbox(), new Inbox()];
      a.subscribe(subject('start'), 'from-all', all.handler, durable(1, { start: 'all' }));
      a.subscribe(subject('start'), 'from-time', since.handler, durable(1, { start: between }));
      a.subscribe(subject('start'), 'from-now', fresh.handler, durable(1, { start: 'new' }));
      await a.flush();
      await publishAll(b, subject('start'), [3]);
      await eventually(() => {
        expect(all.received).toEqual([0, 1, 2, 3]);
        expect(since.received).toEqual([2, 3]);
        expect(fresh.received).toEqual([3]);
      });
    });

    it("delivers a crashed member's unacknowledged message to another member of its group", async () => {
      const { t, transports, subject } = fixture();
      const [a, b, c] = transports;
      const onA: Call[] = [];
      let release!: () => void;
      const hung = new Promise<void>((resolve) => (release = resolve));
      a.subscribe(subject('crash'), 'survivors', (s, payload, attempt) => (onA.push({ n: numberOf(payload), attempt }), hung), durable(5));
      await a.flush();
      await publishAll(c, subject('crash'), [1]);
      await eventually(() => expect(onA.map((call) => call.n)).toEqual([1]));
      const onB: Call[] = [];
      b.subscribe(subject('crash'), 'survivors', recording(onB), durable(5));
      await b.flush();
      try {
        await t.crash!(a);
        await eventually(() => expect(onB.map((call) => call.n)).toEqual([1]), 30_000);
        expect(onB[0].attempt).toBeGreaterThanOrEqual(2);
      } finally {
        release();
      }
    });

    it('retries an ordered group\'s failing event in place: no later event overtakes it', async () => {
      const { transports, subject } = fixture();
      const [a, b, c] = transports;
      const calls: Call[] = [];
      const handler = (s: string, payload: TransportPayload, attempt: number) => {
        const call = { n: numberOf(payload), attempt };
        calls.push(call);
        return sleep(2).then(() => {
          if (call.n === 3 && attempt === 1) throw new Error('fails once on purpose');
        });
      };
      a.subscribe(subject('ordered'), 'in-order', handler, durable(3, { ordered: true }));
      b.subscribe(subject('ordered'), 'in-order', handler, durable(3, { ordered: true }));
      await Promise.all([a.flush(), b.flush()]);
      await publishAll(c, subject('ordered'), range(0, 10));
      await eventually(() => expect(calls).toHaveLength(11));
      expect(calls.map((call) => `${call.n}/${call.attempt}`)).toEqual(['0/1', '1/1', '2/1', '3/1', '3/2', '4/1', '5/1', '6/1', '7/1', '8/1', '9/1']);
    });

    it('handles an event re-published with the same id once per group', async () => {
      const { transports, subject } = fixture();
      const [a, b, c] = transports;
      const [shared, single] = [new Inbox(), new Inbox()];
      a.subscribe(subject('dup'), 'dedupe-shared', shared.handler, durable(1));
      b.subscribe(subject('dup'), 'dedupe-shared', shared.handler, durable(1));
      c.subscribe(subject('dup'), 'dedupe-single', single.handler, durable(1));
      await Promise.all(transports.map((transport) => transport.flush()));
      for (const n of [1, 2]) await c.publish(subject('dup'), message(c, n), `${subject('dup')}-same-id`);
      await c.publish(subject('dup'), message(c, 3), `${subject('dup')}-other-id`);
      await eventually(() => {
        expect(shared.received).toContain(3);
        expect(single.received).toContain(3);
      });
      await sleep(300); // a second delivery of the re-published id would arrive now
      expect([shared.received.filter((n) => n !== 3), single.received.filter((n) => n !== 3)]).toEqual([[1], [1]]);
    });
  });
}
