import { TransportClosedError, type DeliveryOptions, type EventTransport, type MessageHeaders, type TransportPayload } from '../../lib/index.js';
import { eventually } from '../support/instances.js';

/** A transport under test: connected instances sharing one broker, as application instances would. */
export interface ConformanceTarget {
  /** Subjects the suite may use start with this (a JetStream stream only stores its own prefix). */
  readonly prefix: string;
  /** NATS delivers a connection's own publishes to its broadcast subscriptions; the memory broker does not. */
  readonly echoesOwnBroadcast: boolean;
  connect(count: number): Promise<EventTransport[]>;
  teardown(): Promise<void>;
}

const DELIVERY: DeliveryOptions = { attempts: 1, start: 'new', ordered: false };
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What a subscription received: the `n` of each message, in order. */
class Inbox {
  readonly received: number[] = [];

  readonly handler = (_subject: string, payload: TransportPayload) => {
    const message = payload instanceof Uint8Array ? JSON.parse(decoder.decode(payload)) : (payload.event as { n: number });
    this.received.push(message.n);
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
  });
}
