import 'reflect-metadata';
import { EventCodec } from '../../lib/codec/event-codec.js';
import { EventRegistry } from '../../lib/registry/event-registry.js';

class Placed {
  constructor(readonly orderId: string) {}
}

const registry = new EventRegistry();
const placed = registry.registerEvent(Placed, 'Placed');
const codec = new EventCodec(registry, { origin: 'instance-a', source: '/tests', subjectPrefix: 'events.domain', maxMessageBytes: 1024 * 1024 });
const SUBJECT = 'events.domain.Placed';
const TIME = '2026-11-24T10:00:00.200Z';
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const envelope = (attributes: Record<string, unknown>) =>
  new TextEncoder().encode(JSON.stringify({ specversion: '1.0', id: 'e-1', type: 'Placed', source: '/go', data: { orderId: 'o-1' }, ...attributes }));

describe('CloudEvents extension attributes: correlation, causation, W3C trace context', () => {
  it('round-trips correlationid, causationid, traceparent and tracestate as top-level string attributes', () => {
    const extensions = { correlationid: 'root-1', causationid: 'cause-1', traceparent: TRACEPARENT, tracestate: 'vendor=a1,other=b2' };
    const bytes = codec.encode(new Placed('o-1'), placed, 'e-2', TIME, extensions);
    const json = JSON.parse(new TextDecoder().decode(bytes));
    expect(json).toMatchObject({ ...extensions, id: 'e-2', type: 'Placed', data: { orderId: 'o-1' } });
    expect(codec.decode(SUBJECT, bytes).extensions).toEqual(extensions);
  });

  it('writes nothing for an event without them (a root event, untraced)', () => {
    const text = new TextDecoder().decode(codec.encode(new Placed('o-1'), placed, 'e-3', TIME));
    expect(text).not.toMatch(/correlationid|causationid|traceparent|tracestate/);
    expect(codec.decode(SUBJECT, new TextEncoder().encode(text)).extensions).toEqual({});
  });

  it('reads them from foreign producers', () => {
    expect(codec.decode(SUBJECT, envelope({ traceparent: TRACEPARENT, correlationid: 'flow-9' })).extensions).toEqual({ traceparent: TRACEPARENT, correlationid: 'flow-9' });
  });

  it.each([
    ['a traceparent that is not W3C', { traceparent: '00-xyz-b7ad6b7169203331-01', tracestate: 'a=b' }],
    ['version ff', { traceparent: 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }],
    ['upper-case hex', { traceparent: TRACEPARENT.toUpperCase() }],
    ['a tracestate without traceparent', { tracestate: 'a=b' }],
    ['non-string ids', { correlationid: 42, causationid: { id: 'x' } }],
    ['empty ids', { correlationid: '', causationid: '' }],
    ['ids past 256 characters', { correlationid: 'x'.repeat(257), causationid: 'y'.repeat(10_000) }],
  ])('ignores %s, and still decodes the event', (_, attributes) => {
    const decoded = codec.decode(SUBJECT, envelope(attributes));
    expect(decoded.event).toBeInstanceOf(Placed);
    expect(Object.values(decoded.extensions).filter((v) => v !== undefined)).toEqual([]);
  });

  it('drops a tracestate past 512 characters but keeps its traceparent', () => {
    expect(codec.decode(SUBJECT, envelope({ traceparent: TRACEPARENT, tracestate: `a=${'b'.repeat(600)}` })).extensions).toEqual({ traceparent: TRACEPARENT, tracestate: undefined });
  });
});
