import { connect } from '@nats-io/transport-node';
import type { FinishedSpan, RecordedMetric } from '../support/instance-protocol.js';
import { eventually, type ChildProcessInstance } from '../support/instances.js';
import { NatsCluster } from '../support/nats-cluster.js';

// SpanKind and SpanStatusCode of @opentelemetry/api.
const INTERNAL = 0, PRODUCER = 3, CONSUMER = 4;
const ERROR = 2;

type Telemetry = { spans: FinishedSpan[]; metrics: RecordedMetric[] };
const telemetry = (instance: ChildProcessInstance) => instance.send({ cmd: 'telemetry' }) as Promise<Telemetry>;

function span(spans: FinishedSpan[], name: string, where: (s: FinishedSpan) => boolean = () => true): FinishedSpan {
  const found = spans.find((s) => s.name === name && where(s));
  if (!found) throw new Error(`no span "${name}" among ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
  return found;
}

/** The sum of a metric's points whose attributes include `attributes`. */
function total(metrics: RecordedMetric[], name: string, attributes: Record<string, unknown> = {}): number {
  const points = metrics.find((m) => m.name === name)?.points ?? [];
  return points.filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v)).reduce((sum, p) => sum + p.value, 0);
}

const handledBy = async (instance: ChildProcessInstance, handler: string, eventId: string) => {
  const record = (await instance.records()).find((r) => r.handler === handler && r.eventId === eventId);
  if (!record) throw new Error(`${instance.name}: ${handler} has not handled ${eventId}`);
  return record;
};

describe('OpenTelemetry across instances (separate processes, real nats-server, in-memory exporter and reader)', () => {
  describe('core NATS', () => {
    let cluster: NatsCluster;
    let i1: ChildProcessInstance, i2: ChildProcessInstance, i3: ChildProcessInstance;

    beforeAll(async () => {
      cluster = await NatsCluster.start('nats', { FIXTURE_OTEL: 'true' });
      [i1, i2, i3] = await Promise.all([cluster.instance('i1'), cluster.instance('i2', {}, { chain: true }), cluster.instance('i3')]);
    });
    afterAll(() => cluster.dispose());

    it('one trace from the caller\'s span through send, process and handle on every instance, and on through what a handler publishes', async () => {
      await i1.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['chain-t1'], span: 'POST /orders' });
      const a = await eventually(() => handledBy(i3, 'pattern:>', 'chain-t1'));
      const b = await eventually(() => handledBy(i3, 'pattern:>', 'chained-chain-t1'));
      const [t1, t2, t3] = await eventually(async () => {
        const all = await Promise.all([i1, i2, i3].map(telemetry));
        span(all[2].spans, 'process events.domain.GameTick', (s) => s.attributes['messaging.message.id'] === b.id);
        return all;
      });

      const request = span(t1.spans, 'POST /orders');
      const send = span(t1.spans, 'send events.domain.OrderPlaced', (s) => s.attributes['messaging.message.id'] === a.id);
      expect(send).toMatchObject({ kind: PRODUCER, traceId: request.traceId, parentSpanId: request.spanId });
      expect(send.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.destination.name': 'events.domain.OrderPlaced',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'cloudevents.event_id': a.id,
        'cloudevents.event_type': 'OrderPlaced',
        'cloudevents.event_source': '/nestjs-domain-events',
      });
      expect(send.attributes['messaging.message.body.size']).toBeGreaterThan(100);

      // The receiving instance continues the producer's trace.
      const byId = (s: FinishedSpan) => s.attributes['messaging.message.id'] === a.id;
      // One process span per delivery: each subscription of the instance (a type, a pattern, a group) gets its own.
      const handle = span(t2.spans, 'handle ChainHandlers.onOrder');
      const process2 = span(t2.spans, 'process events.domain.OrderPlaced', (s) => s.spanId === handle.parentSpanId);
      expect(process2).toMatchObject({ kind: CONSUMER, traceId: request.traceId, parentSpanId: send.spanId });
      expect(byId(process2)).toBe(true);
      expect(process2.attributes).toMatchObject({ 'messaging.operation.type': 'process', 'cloudevents.event_id': a.id });
      const billing = span(t1.spans.concat(t2.spans, t3.spans), 'process events.domain.OrderPlaced', (s) => byId(s) && s.attributes['messaging.consumer.group.name'] === 'billing');
      expect(billing).toMatchObject({ traceId: request.traceId, parentSpanId: send.spanId });
      expect(handle).toMatchObject({ kind: INTERNAL, traceId: request.traceId });
      expect(handle.attributes).toMatchObject({ 'code.function.name': 'ChainHandlers.onOrder', 'messaging.destination.name': 'events.domain.OrderPlaced' });

      // What the handler published is a child of its span, and reaches the third instance in the same trace.
      const sendB = span(t2.spans, 'send events.domain.GameTick', (s) => s.attributes['messaging.message.id'] === b.id);
      expect(sendB).toMatchObject({ traceId: request.traceId, parentSpanId: handle.spanId });
      const processB = t3.spans.filter((s) => s.name === 'process events.domain.GameTick' && s.attributes['messaging.message.id'] === b.id);
      expect(processB.length).toBeGreaterThan(0);
      for (const delivery of processB) expect(delivery).toMatchObject({ traceId: request.traceId, parentSpanId: sendB.spanId });
      const onTick = span(t3.spans, 'handle TickController.onTick', (s) => processB.some((p) => p.spanId === s.parentSpanId));
      expect(onTick.traceId).toBe(request.traceId);
      // The publisher's own handlers run in a process span of their own, under its send span.
      expect(span(t1.spans, 'process events.domain.OrderPlaced', byId)).toMatchObject({ parentSpanId: send.spanId });

      // Names stay low-cardinality: no routing key, no id.
      const names = new Set([...t1.spans, ...t2.spans, ...t3.spans].map((s) => s.name));
      for (const name of names) expect(name).not.toMatch(/chain-t1|room-/);
    });

    it('records a failing handler\'s error on its span, with the status set', async () => {
      await i1.send({ cmd: 'publish', type: 'GameTick', ids: ['tick-t2'] });
      const { id } = await eventually(() => handledBy(i3, 'rejects', 'tick-t2'));
      const { spans } = await eventually(async () => {
        const t = await telemetry(i3);
        const deliveries = t.spans.filter((s) => s.attributes['messaging.message.id'] === id).map((s) => s.spanId);
        span(t.spans, 'handle FailingHandlers.rejects', (s) => deliveries.includes(s.parentSpanId!));
        return { spans: t.spans.filter((s) => deliveries.includes(s.parentSpanId!)) };
      });
      expect(span(spans, 'handle TickController.onTick').status.code).not.toBe(ERROR);
      for (const name of ['handle FailingHandlers.throws', 'handle FailingHandlers.rejects']) {
        const failed = span(spans, name);
        expect(failed.status.code).toBe(ERROR);
        expect(failed.status.message).toMatch(/failure on purpose/);
        expect(failed.events).toContain('exception');
        expect(failed.attributes['error.type']).toBe('Error');
      }
    });

    it('continues the trace of a foreign producer that sets traceparent', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const nc = await connect({ servers: cluster.server.url });
      nc.publish(
        'events.domain.OrderPlaced',
        JSON.stringify({
          specversion: '1.0', id: 'go-traced-1', source: '/billing-go', type: 'OrderPlaced', traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
          data: { orderId: 'foreign-t3', total: 42 },
        }),
      );
      await nc.flush();
      await nc.close();
      const process3 = await eventually(async () => span((await telemetry(i3)).spans, 'process events.domain.OrderPlaced', (s) => s.attributes['messaging.message.id'] === 'go-traced-1'));
      expect(process3).toMatchObject({ traceId, parentSpanId: '00f067aa0ba902b7' });
      expect(process3.attributes['cloudevents.event_source']).toBe('/billing-go');
    });

    it('metrics per the messaging conventions, with type-level destinations, and the project\'s own', async () => {
      await i1.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: ['m-0', 'm-1', 'm-2'], room: 'room-9' });
      await eventually(() => handledBy(i3, 'enter:all', 'm-2'));
      const [{ metrics: m1 }, { metrics: m2 }, { metrics: m3 }] = await Promise.all([i1, i2, i3].map(telemetry));
      const room = { 'messaging.system': 'nats', 'messaging.destination.name': 'events.domain.PlayerEnteredRoom' };
      expect(total(m1, 'messaging.client.sent.messages', { ...room, 'messaging.operation.type': 'send' })).toBe(3);
      expect(total(m1, 'messaging.client.operation.duration', room)).toBe(3);
      expect(total(m3, 'messaging.client.consumed.messages', room)).toBeGreaterThanOrEqual(3);
      expect(total(m3, 'messaging.process.duration', { ...room, 'code.function.name': 'RoomHandlers.onEnter' })).toBe(3);
      // Keyed subjects never become series of their own.
      const destinations = [...m1, ...m3].flatMap((m) => m.points.map((p) => p.attributes['messaging.destination.name']));
      expect(destinations.filter((d) => typeof d === 'string' && d.includes('room-9'))).toEqual([]);
      // Consumer groups are labelled: each OrderPlaced so far reached one member of the audit group.
      const audited = [m1, m2, m3].map((m) => total(m, 'messaging.client.consumed.messages', { 'messaging.destination.name': 'events.domain.OrderPlaced', 'messaging.consumer.group.name': 'audit' }));
      expect(audited.reduce((a, b) => a + b)).toBe(2); // chain-t1 and foreign-t3
      expect(total(m3, 'domain_events.handler.errors', { 'code.function.name': 'FailingHandlers.throws', 'error.type': 'Error' })).toBeGreaterThanOrEqual(1);
      expect(total(m3, 'domain_events.held')).toBe(0);
    });

    it('counts decode errors by reason', async () => {
      const nc = await connect({ servers: cluster.server.url });
      nc.publish('events.domain.OrderPlaced', 'not json');
      await nc.flush();
      await nc.close();
      // Once per subscription the message arrived on.
      await eventually(async () => expect(total((await telemetry(i3)).metrics, 'domain_events.decode.errors', { 'error.type': 'malformed' })).toBeGreaterThan(0));
      expect(total((await telemetry(i3)).metrics, 'domain_events.decode.errors')).toBe((await i3.status()).stats.decodeErrors);
    });
  });

  describe('JetStream', () => {
    let cluster: NatsCluster;
    let i1: ChildProcessInstance, i2: ChildProcessInstance;

    beforeAll(async () => {
      cluster = await NatsCluster.start('jetstream', {
        FIXTURE_OTEL: 'true', FIXTURE_DURABLE: 'true', EVENT_BUS_RETRY_INITIAL_DELAY_MS: '10', EVENT_BUS_ACK_WAIT_MS: '2000',
      });
      [i1, i2] = await Promise.all([cluster.instance('i1'), cluster.instance('i2')]);
    });
    afterAll(() => cluster.dispose());

    it('marks retried deliveries with their attempt, counts retries, and keeps the trace through a dead letter and its replay', async () => {
      await i1.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['flaky-j1', 'poison-j1'], span: 'POST /orders' });
      const { spans: sent } = await telemetry(i1);
      const request = span(sent, 'POST /orders');
      const all = async () => (await Promise.all([i1, i2].map(telemetry))).reduce<Telemetry>((t, x) => ({ spans: t.spans.concat(x.spans), metrics: t.metrics.concat(x.metrics) }), { spans: [], metrics: [] });
      // flaky-j1 succeeds on its third attempt.
      const attempts = await eventually(async () => {
        const flaky = (await all()).spans.filter((s) => s.name === 'handle DurableHandlers.flaky' && s.traceId === request.traceId);
        const processes = (await all()).spans.filter((s) => s.name === 'process events.domain.OrderPlaced' && s.attributes['messaging.consumer.group.name'] === 'flaky');
        expect(processes.map((s) => s.attributes['domain_events.delivery.attempt'] ?? 1)).toEqual(expect.arrayContaining([1, 2, 3]));
        return flaky;
      });
      expect(attempts.every((s) => s.traceId === request.traceId)).toBe(true);
      await eventually(async () => {
        const { metrics } = await all();
        expect(total(metrics, 'domain_events.retries', { 'messaging.consumer.group.name': 'flaky' })).toBeGreaterThanOrEqual(2);
        expect(total(metrics, 'messaging.client.consumed.messages', { 'messaging.system': 'nats' })).toBeGreaterThan(0);
        expect(total(metrics, 'domain_events.dead_letters')).toBeGreaterThanOrEqual(1);
        expect(metrics.find((m) => m.name === 'domain_events.consumer.pending')?.points.length).toBeGreaterThan(0);
      });

      // poison-j1 is dead-lettered; healed and replayed, its handler runs in the original trace.
      const letters = await eventually(async () => {
        const list = (await i1.send({ cmd: 'deadLetters' })) as { id: string; group: string }[];
        expect(list.some((l) => l.group === 'flaky')).toBe(true);
        return list;
      });
      await Promise.all([i1, i2].map((i) => i.send({ cmd: 'heal' })));
      const poison = letters.find((l) => l.group === 'flaky')!;
      await i1.send({ cmd: 'replay', id: poison.id });
      await eventually(async () => {
        const healed = (await all()).spans.filter((s) => s.name === 'handle DurableHandlers.flaky' && s.status.code !== ERROR && s.traceId === request.traceId);
        expect(healed.length).toBeGreaterThanOrEqual(2); // flaky-j1's third attempt and the replayed poison-j1
      });
    });
  });
});
