import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CloudEvent, HTTP } from 'cloudevents';
import { DecodeError, EncodeError } from '../../lib/codec/codec-errors.js';
import { EventCodec, type DecodedEvent } from '../../lib/codec/event-codec.js';
import { EventRegistry } from '../../lib/registry/event-registry.js';
import type { MessageHeaders } from '../../lib/message-headers.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
class Badge {
  constructor(
    readonly label: string,
    readonly since: Date,
    readonly at: Point,
  ) {}
}
class Moved {
  constructor(
    readonly who: string,
    readonly when: Date,
    readonly to: Point,
    readonly badges: Badge[],
    readonly path: (Point | null | undefined)[],
    readonly big: bigint,
    readonly negative: bigint,
    readonly nothing: null,
    readonly missing: undefined,
    readonly odd: Record<string, unknown>,
    readonly broken: Date,
  ) {}
  describe(): string {
    return `${this.who} at ${this.to.x},${this.to.y}`;
  }
}
class Unregistered {}

const registry = new EventRegistry();
const moved = registry.registerEvent(Moved, 'Moved');
registry.registerValueObject(Point, 'Point');
registry.registerValueObject(Badge, 'Badge');
const settings = { source: '/tests', subjectPrefix: 'events', maxMessageBytes: 1024 * 1024 };
const codec = new EventCodec(registry, { ...settings, origin: 'instance-a' });
const other = new EventCodec(registry, { ...settings, origin: 'instance-b' });
const SUBJECT = 'events.Moved';

const when = new Date('2026-11-24T10:00:00.123Z');
const sample = () =>
  new Moved(
    'p1', when, new Point(3, -4), [new Badge('first', when, new Point(1, 1))], [new Point(0, 0), null, undefined],
    123456789012345678901234567890n, -42n, null, undefined, { 'a/b': when, 'til~de': 1n, nested: { deep: [new Point(9, 9)] } }, new Date(NaN),
  );
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const encode = (event: object, id = 'id-1') => text(codec.encode(event, moved, id, '2026-11-24T10:00:00.200Z'));
const bytes = (json: string) => new TextEncoder().encode(json);
const decode = (body: string | Uint8Array, subject = SUBJECT, headers?: MessageHeaders): DecodedEvent =>
  codec.decode(subject, typeof body === 'string' ? bytes(body) : body, headers);
/** A valid structured Moved from another producer, with `fields` replacing (or, undefined, removing) members. */
const ce = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({ specversion: '1.0', id: 'x', source: '/go', type: 'Moved', data: { who: 'p' }, ...fields });
const typed = (data: Record<string, unknown>, types: Record<string, string>) => ce({ data, datatypes: JSON.stringify(types) });
const rejection = (attempt: () => unknown): DecodeError => {
  try {
    attempt();
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw error;
  }
  throw new Error('expected a DecodeError');
};

const binaryHeaders = (record: Record<string, string>): MessageHeaders => Object.entries(record).map(([name, value]) => [name, [value]]);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

describe('EventCodec', () => {
  it('round-trips class instances exactly: Dates, value objects (nested, in arrays), null, undefined, bigint', () => {
    const { event } = decode(encode(sample()));
    const e = event as Moved;
    expect(e).toBeInstanceOf(Moved);
    expect(e.describe()).toBe('p1 at 3,-4');
    expect(e.when).toBeInstanceOf(Date);
    expect(e.when.toISOString()).toBe(when.toISOString());
    expect(e.to).toBeInstanceOf(Point);
    expect(e.badges[0]).toBeInstanceOf(Badge);
    expect(e.badges[0].since).toBeInstanceOf(Date);
    expect(e.badges[0].at).toBeInstanceOf(Point);
    expect(e.path[0]).toBeInstanceOf(Point);
    expect(e.path).toHaveLength(3);
    expect(e.path[1]).toBeNull();
    expect(e.path[2]).toBeUndefined();
    expect(2 in e.path).toBe(true);
    expect(e.big).toBe(123456789012345678901234567890n);
    expect(e.negative).toBe(-42n);
    expect(e.nothing).toBeNull();
    expect('missing' in e && e.missing === undefined).toBe(true);
    expect(e.odd['a/b']).toEqual(when);
    expect(e.odd['til~de']).toBe(1n);
    expect((e.odd.nested as { deep: Point[] }).deep[0]).toBeInstanceOf(Point);
    expect(Number.isNaN(e.broken.getTime())).toBe(true);
    expect({ ...e, broken: null }).toStrictEqual({ ...sample(), broken: null }); // an Invalid Date never equals itself
  });

  it('writes CloudEvents 1.0 structured JSON with plain data and the extras beside it', () => {
    const json = encode(sample(), 'evt-"quoted"');
    expect(json.startsWith('{"specversion":"1.0","origin":"instance-a",')).toBe(true);
    const envelope = JSON.parse(json);
    expect(envelope).toMatchObject({
      specversion: '1.0', origin: 'instance-a', id: 'evt-"quoted"', type: 'Moved', source: '/tests',
      time: '2026-11-24T10:00:00.200Z', datacontenttype: 'application/json',
    });
    expect(envelope.data.when).toBe('2026-11-24T10:00:00.123Z');
    expect(envelope.data.big).toBe('123456789012345678901234567890');
    expect(envelope.data.to).toEqual({ x: 3, y: -4 });
    expect(typeof envelope.datatypes).toBe('string');
    expect(JSON.parse(envelope.datatypes)).toEqual({
      '/when': 'Date', '/to': 'Point', '/badges/0': 'Badge', '/badges/0/since': 'Date', '/badges/0/at': 'Point',
      '/path/0': 'Point', '/path/2': 'undefined', '/big': 'bigint', '/negative': 'bigint', '/missing': 'undefined',
      '/odd/a~1b': 'Date', '/odd/til~0de': 'bigint', '/odd/nested/deep/0': 'Point', '/broken': 'Date',
    });
  });

  it('leaves datatypes out when JSON says it all', () => {
    registry.registerEvent(Unregistered, 'Plain');
    const plain = Object.assign(new Unregistered(), { a: 1, b: ['x'], c: { d: null } });
    const envelope = JSON.parse(text(codec.encode(plain, registry.eventByName('Plain')!, 'id', '2026-11-24T10:00:00Z')));
    expect(envelope).not.toHaveProperty('datatypes');
    expect(codec.decode('events.Plain', JSON.stringify({ ...envelope, time: '2026-11-24T10:00:00Z' })).event).toEqual(plain);
  });

  it('tells its own messages from other instances\' by their first bytes', () => {
    expect(codec.isOwn(bytes(encode(sample())), undefined)).toBe(true);
    expect(codec.isOwn(other.encode(sample(), moved, 'id', 't'), undefined)).toBe(false);
    expect(codec.isOwn(bytes('{"specversion":"1.0"}'), undefined)).toBe(false);
  });

  it('accepts a CloudEvent from another producer: no origin, no datatypes', () => {
    const foreign = { specversion: '1.0', id: 'go-1', source: '/go', type: 'Moved', data: { who: 'p2', when: '2026-01-01T00:00:00Z' } };
    const decoded = decode(JSON.stringify(foreign), 'events.Moved.room-1');
    expect(decoded).toMatchObject({ id: 'go-1', type: 'Moved', source: '/go', origin: undefined, time: undefined, key: 'room-1' });
    expect(decoded.event).toBeInstanceOf(Moved);
    expect((decoded.event as Moved).when).toBe('2026-01-01T00:00:00Z');
  });

  it.each([
    ['malformed JSON', 'not json', /malformed JSON/, 'malformed'],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/, 'malformed'],
    ['an array body', '[1,2]', /not a JSON object/, 'malformed'],
    ['a string body', '"text"', /not a JSON object/, 'malformed'],
    ['a null body', 'null', /not a JSON object/, 'malformed'],
    ['a missing type', '{"id":"x"}', /"type" attribute is missing/, 'attribute'],
    ['an unknown type', ce({ type: 'Nope' }), /"Nope" is not a registered @DomainEvent type/, 'unknown-type'],
    ['a missing id', ce({ id: undefined }), /"id" is missing/, 'attribute'],
    ['an empty id', ce({ id: '' }), /"id" is empty/, 'attribute'],
    ['an id of 257 characters', ce({ id: 'i'.repeat(257) }), /"id" is 257 characters long; at most 256/, 'attribute'],
    ['an id with a newline', ce({ id: 'a\nb' }), /"id" contains control characters/, 'attribute'],
    ['a missing specversion', ce({ specversion: undefined }), /"specversion" is missing/, 'attribute'],
    ['specversion 0.3', ce({ specversion: '0.3' }), /"specversion" is "0.3"; only "1.0" is read/, 'attribute'],
    ['specversion 2.0', ce({ specversion: '2.0' }), /"specversion" is "2.0"/, 'attribute'],
    ['a missing source', ce({ source: undefined }), /"source" is missing/, 'attribute'],
    ['a source that is no URI-reference', ce({ source: 'billing service' }), /"source" must be a URI-reference/, 'attribute'],
    ['a time that is no timestamp', ce({ time: 'yesterday' }), /"time" "yesterday" is not an RFC 3339 timestamp/, 'attribute'],
    ['a datacontenttype that is not JSON', ce({ datacontenttype: 'text/plain' }), /"datacontenttype" is "text\/plain"; only JSON data is read/, 'data'],
    ['missing data', ce({ data: undefined }), /"data" is missing; an event's data is a JSON object/, 'data'],
    ['null data', ce({ data: null }), /"data" is missing/, 'data'],
    ['data that is not an object', ce({ data: [1] }), /"data" must be a JSON object/, 'data'],
    ['data and data_base64', ce({ data_base64: 'e30=' }), /both "data" and "data_base64"/, 'data'],
    ['data_base64 that is not base64', ce({ data: undefined, data_base64: 'not base64!' }), /"data_base64" is not base64/, 'malformed'],
    ['data_base64 that is not JSON', ce({ data: undefined, data_base64: Buffer.from('hello').toString('base64') }), /"data_base64" is malformed JSON/, 'malformed'],
    ['data_base64 of text', ce({ data: undefined, data_base64: 'aGVsbG8=', datacontenttype: 'text/plain' }), /only JSON data is read/, 'data'],
    ['datatypes that is not a string', ce({ data: {}, datatypes: { '/a': 'Date' } }), /must be a string holding a JSON object/, 'datatypes'],
    ['datatypes to a missing field', typed({}, { '/when': 'Date' }), /refers to a missing field/, 'datatypes'],
    ['an unknown value object', typed({ to: {} }, { '/to': 'Nope' }), /"Nope" is not a registered @ValueObject/, 'datatypes'],
    ['an invalid date', typed({ when: 'yesterday' }, { '/when': 'Date' }), /not a valid date/, 'datatypes'],
    ['a date string of 65 characters', typed({ when: `2026-11-24T10:00:00.${'0'.repeat(44)}Z` }, { '/when': 'Date' }), /longer than 64 characters/, 'datatypes'],
    ['a bad bigint', typed({ big: '1.5' }, { '/big': 'bigint' }), /not an integer string/, 'datatypes'],
    ['a bigint of 1,025 digits', typed({ big: '9'.repeat(1_025) }, { '/big': 'bigint' }), /more than 1024 digits/, 'datatypes'],
    ['a value object that is not an object', typed({ to: 3 }, { '/to': 'Point' }), /is not a JSON object/, 'datatypes'],
    ['a pointer through a scalar', typed({ to: 3 }, { '/to/x': 'Date' }), /not an object/, 'datatypes'],
    ['a pointer through __proto__', typed({}, { '/__proto__/polluted': 'Date' }), /forbidden key/, 'datatypes'],
    ['a pointer to constructor', typed({}, { '/constructor': 'undefined' }), /forbidden key/, 'datatypes'],
    ['a pointer to an array\'s length', typed({ path: [1] }, { '/path/length': 'undefined' }), /is not an index of the array/, 'datatypes'],
    ['a pointer past an array\'s end', typed({ path: [1] }, { '/path/100000000': 'undefined' }), /is not an index of the array/, 'datatypes'],
    ['a pointer to a non-canonical index', typed({ path: [1, 2] }, { '/path/01': 'undefined' }), /is not an index of the array/, 'datatypes'],
    ['datatypes of 65,537 characters', ce({ datatypes: `{"/a":"${'x'.repeat(65_528)}"}` }), /"datatypes" is 65537 characters long; at most 65536/, 'datatypes'],
  ])('rejects %s with a DecodeError', (_case, body, message, reason) => {
    const error = rejection(() => decode(body));
    expect(error.message).toMatch(message);
    expect(error.reason).toBe(reason);
  });

  it('accepts the attributes the spec allows: timestamps with offsets, JSON media types, URI references', () => {
    for (const time of ['2026-11-24T10:00:00Z', '2026-11-24t10:00:00.123456789+05:30', '2026-11-24T23:59:60-00:00']) expect(decode(ce({ time })).time).toBe(time);
    for (const datacontenttype of ['application/json', 'application/json; charset=utf-8', 'text/json', 'application/vnd.game+json']) {
      expect(decode(ce({ datacontenttype })).event).toBeInstanceOf(Moved);
    }
    for (const source of ['/billing', 'urn:billing:eu', 'https://example.com/a?b=c#d', 'billing', '//host/x', 'a%20b']) expect(decode(ce({ source })).source).toBe(source);
  });

  it('refuses a type that does not match the subject it came on: NATS permissions are per subject', () => {
    registry.registerEvent(class AdminGranted {}, 'AdminGranted');
    for (const subject of ['events.Other', 'events.AdminGranted', 'events.MovedX', 'events.Moved.a.b', 'events.Moved.', 'other.Moved', 'events.Moved.bad\u001bkey']) {
      const error = rejection(() => decode(ce({ type: 'Moved' }), subject));
      expect(error.reason).toBe('subject');
      expect(error.message).toContain('does not match the subject');
    }
    expect(rejection(() => decode(ce({ type: 'AdminGranted', data: {} }), SUBJECT)).reason).toBe('subject');
    expect(decode(ce(), 'events.Moved.room-1').key).toBe('room-1');
    expect(decode(ce(), SUBJECT).key).toBeUndefined();
  });

  it('checks sizes before parsing: a message over maxMessageBytes is refused unread', () => {
    const small = new EventCodec(registry, { ...settings, origin: 'small', maxMessageBytes: 2_000 });
    const error = rejection(() => small.decode(SUBJECT, bytes(ce({ data: { who: 'x'.repeat(2_000) } }))));
    expect(error).toMatchObject({ reason: 'too-large' });
    expect(error.message).toMatch(/at most 2000 are accepted/);
    expect(() => small.encode(Object.assign(sample(), { who: 'x'.repeat(2_000) }), moved, 'id-1', '2026-11-24T10:00:00Z')).toThrow(
      /the encoded event is \d+ bytes, more than maxMessageBytes \(2000\).*EVENT_BUS_MAX_MESSAGE_BYTES/,
    );
    expect(() => small.encodeBinary(Object.assign(sample(), { who: 'x'.repeat(2_000) }), moved, 'id-1', '2026-11-24T10:00:00Z')).toThrow(EncodeError);
  });

  it('puts wire values in its errors escaped and cut: no forged log line, no megabyte of message', () => {
    const forged = 'Moved\n[Nest] 1  - FORGED \u001b[31mred\u2028';
    for (const body of [ce({ type: forged }), ce({ id: 'y'.repeat(1_000_000) }), typed({ path: [1] }, { [`/path/${'\n'.repeat(300)}`]: 'Date' }), ce({ source: `a b\n${'s'.repeat(10_000)}` })]) {
      const { message } = rejection(() => decode(body));
      expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
      expect(message.length).toBeLessThan(1_000);
    }
    expect(rejection(() => decode(ce({ type: forged }))).message).toContain('Moved\\n[Nest] 1  - FORGED \\x1b[31mred\\u2028');
  });

  it('keeps its caches bounded in bytes, and never keeps a datatypes that failed', () => {
    const hostile = (i: number, tag: string) => {
      const entries = Array.from({ length: 2_400 }, (_, j) => `"/k${i}_${j}":"${tag}"`);
      return ce({ datatypes: `{${entries.join(',')}}` });
    };
    const before = heapAfterGc();
    // "undefined" fits any object: each of these applies cleanly, so each would be kept if it could.
    for (let i = 0; i < 300; i++) decode(hostile(i, 'undefined'));
    for (let i = 0; i < 300; i++) expect(() => decode(hostile(i, 'X'))).toThrow(DecodeError);
    expect(heapAfterGc() - before).toBeLessThan(48 * 2 ** 20);
  });

  it('checks every message\'s time and datatypes, whatever the message before it had', () => {
    const valid = { time: '2026-11-24T10:00:00Z', data: { who: 'p', when: '2026-11-24T10:00:00Z' }, datatypes: JSON.stringify({ '/when': 'Date' }) };
    const fresh = new EventCodec(registry, { ...settings, origin: 'instance-c' });
    expect(rejection(() => fresh.decode(SUBJECT, bytes(ce({ ...valid, datatypes: '' })))).reason).toBe('malformed');
    expect((decode(ce(valid)).event as Moved).when).toEqual(new Date('2026-11-24T10:00:00Z'));
    expect(rejection(() => decode(ce({ ...valid, time: 'yesterday' }))).reason).toBe('attribute');
    // The same datatypes as the valid message, on data it does not fit; then an empty one.
    expect(rejection(() => decode(ce({ ...valid, data: { who: 'p' } }))).reason).toBe('datatypes');
    expect(rejection(() => decode(ce({ ...valid, datatypes: '' }))).reason).toBe('malformed');
    expect((decode(ce(valid)).event as Moved).when).toEqual(new Date('2026-11-24T10:00:00Z'));
  });

  it('drops own "__proto__" keys at every depth, however they are spelled', () => {
    const nested = ce({ data: { who: 'p', odd: { inner: { __proto__: { polluted: 1 } }, list: [{ __proto__: { polluted: 1 } }] } } });
    const spelled = ce({ data: { who: 'p', odd: { placeholder: { polluted: 1 } } } }).replace('"placeholder"', '"\\u005f_proto__"');
    for (const body of [nested.replace(/"__proto__"/g, '"__proto__"'), spelled]) {
      const odd = (decode(body).event as Moved).odd as Record<string, Record<string, unknown>>;
      for (const object of [odd, odd.inner, ...((odd.list as unknown as object[]) ?? [])].filter(Boolean)) {
        expect(Object.hasOwn(object, '__proto__')).toBe(false);
        expect((Object.assign({}, object) as Record<string, unknown>).polluted).toBeUndefined();
        expect(({ ...object } as Record<string, unknown>).polluted).toBeUndefined();
      }
    }
  });

  it('reads data_base64 holding JSON, as SDKs send binary data', () => {
    const base64 = Buffer.from(JSON.stringify({ who: 'p64', when: '2026-01-01T00:00:00.000Z' })).toString('base64');
    const { event } = decode(ce({ data: undefined, data_base64: base64, datacontenttype: 'application/json', datatypes: '{"/when":"Date"}' }));
    expect(event).toBeInstanceOf(Moved);
    expect((event as Moved).who).toBe('p64');
    expect((event as Moved).when).toBeInstanceOf(Date);
  });

  describe('binary mode', () => {
    const attributes = { 'ce-specversion': '1.0', 'ce-id': 'b-1', 'ce-type': 'Moved', 'ce-source': '/go' };

    it('round-trips an event: ce- headers, percent-encoded, and the JSON data as the body', () => {
      const { body, headers } = codec.encodeBinary(sample(), moved, 'id "1" 100%', '2026-11-24T10:00:00.200Z');
      const byName = Object.fromEntries([...headers].map(([name, [value]]) => [name, value]));
      expect(byName).toMatchObject({
        'ce-specversion': '1.0', 'ce-origin': 'instance-a', 'ce-id': 'id%20%221%22%20100%25', 'ce-type': 'Moved', 'ce-source': '/tests',
        'ce-time': '2026-11-24T10:00:00.200Z', 'ce-datacontenttype': 'application/json',
      });
      expect(byName['ce-datatypes']).toMatch(/^\{%22\/when%22:%22Date%22/);
      for (const value of Object.values(byName)) expect(value).toMatch(/^[\x21\x23-\x7e]+$/); // printable ASCII, no space or quote
      expect(JSON.parse(text(body)).when).toBe(when.toISOString());
      const decoded = codec.decode(SUBJECT, body, headers);
      expect(decoded).toMatchObject({ id: 'id "1" 100%', type: 'Moved', source: '/tests', origin: 'instance-a', time: '2026-11-24T10:00:00.200Z' });
      expect({ ...decoded.event, broken: null }).toStrictEqual({ ...sample(), broken: null });
      expect(codec.isOwn(body, headers)).toBe(true);
      expect(other.isOwn(body, headers)).toBe(false);
    });

    it('reads header names in any case, quoted and percent-encoded values, and Content-Type as datacontenttype', () => {
      const headers = binaryHeaders({ 'CE-SpecVersion': '1.0', 'Ce-Id': '"b \\"2\\""', 'ce-type': 'Moved', 'ce-source': '/go%2Fon', 'Content-Type': 'application/json; charset=utf-8', 'ce-traceparent': '00-abc-01' });
      const decoded = decode('{"who":"p"}', SUBJECT, headers);
      expect(decoded).toMatchObject({ id: 'b "2"', source: '/go/on', attributes: { datacontenttype: 'application/json; charset=utf-8', traceparent: '00-abc-01' } });
    });

    it('is binary only when it carries ce- headers and no structured content type', () => {
      expect(decode(ce(), SUBJECT, binaryHeaders({ 'Nats-Msg-Id': 'x' })).id).toBe('x');
      expect(decode(ce(), SUBJECT, binaryHeaders({ 'content-type': 'application/cloudevents+json', 'ce-id': 'ignored' })).id).toBe('x');
    });

    it.each([
      ['no specversion', { 'ce-id': 'b', 'ce-type': 'Moved', 'ce-source': '/s' }, '{"who":"p"}', /"specversion" is missing/],
      ['no type', { 'ce-specversion': '1.0', 'ce-id': 'b' }, '{"who":"p"}', /"type" attribute is missing \(binary mode: no ce-type header\)/],
      ['an empty body', attributes, '', /"data" is missing/],
      ['a body that is not JSON', attributes, 'hello', /the body is malformed JSON/],
      ['a text body', { ...attributes, 'ce-datacontenttype': 'text/plain' }, 'hello', /only JSON data is read/],
      ['invalid percent-encoding', { ...attributes, 'ce-id': '%C0%A0' }, '{"who":"p"}', /invalid percent-encoding/],
      ['another type than the subject\'s', { ...attributes, 'ce-type': 'AdminGranted' }, '{}', /does not match the subject/],
    ])('rejects a binary message with %s', (_case, headers, body, message) => {
      expect(rejection(() => decode(body, SUBJECT, binaryHeaders(headers))).message).toMatch(message);
    });
  });

  it('publishes only what the CloudEvents SDK validates, and reads what it produces', () => {
    const structured = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: encode(sample()) }) as CloudEvent<unknown>;
    expect(structured.validate()).toBe(true);
    const { body, headers } = codec.encodeBinary(sample(), moved, 'id-1', '2026-11-24T10:00:00.200Z');
    const record = Object.fromEntries([...headers].map(([name, [value]]) => [name === 'ce-datacontenttype' ? 'content-type' : name, decodeURIComponent(value)]));
    const binary = HTTP.toEvent({ headers: record, body: text(body) }) as CloudEvent<unknown>;
    expect(binary.validate()).toBe(true);
    expect(binary).toMatchObject({ type: 'Moved', origin: 'instance-a', datatypes: JSON.parse(text(codec.encode(sample(), moved, 'i', 't')).slice(0, -1) + '}').datatypes });

    const made = new CloudEvent({ type: 'Moved', source: '/sdk', data: { who: 'sdk' } });
    expect(decode(HTTP.structured(made).body as string).event).toBeInstanceOf(Moved);
    const sdkBinary = HTTP.binary(made);
    expect(decode(sdkBinary.body as string, SUBJECT, binaryHeaders(sdkBinary.headers as Record<string, string>)).event).toMatchObject({ who: 'sdk' });
  });

  it('never lets wire data reach a prototype', () => {
    const hostile =
      '{"id":"x","type":"Moved","data":{"who":"p","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},' +
      '"to":{"x":1,"__proto__":{"polluted":true}}},"datatypes":"{\\"/to\\":\\"Point\\"}","specversion":"1.0","source":"/s"}';
    const { event } = decode(hostile);
    expect(Object.getPrototypeOf(event)).toBe(Moved.prototype);
    expect((event as Moved).to).toBeInstanceOf(Point);
    expect(Object.getPrototypeOf((event as Moved).to)).toBe(Point.prototype);
    expect((event as Record<string, unknown>).polluted).toBeUndefined();
    expect(((event as Moved).to as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(Object.hasOwn(event, 'constructor')).toBe(false);
  });

  it('refuses to encode what the other side could not rebuild, naming where it is', () => {
    const withMap = Object.assign(sample(), { to: new Map() });
    expect(() => encode(withMap)).toThrow(EncodeError);
    expect(() => encode(withMap)).toThrow('Moved at "/to": Map is not a registered value object');
    const nested = Object.assign(sample(), { odd: { deep: [new Unregistered()] } });
    expect(() => encode(nested)).toThrow('Moved at "/odd/deep/0": Unregistered is not a registered value object');
  });

  it('refuses to encode what receivers would refuse: a bigint of more than 1,024 digits, datatypes over 65,536 characters', () => {
    expect(() => encode(Object.assign(sample(), { big: 10n ** 1024n }))).toThrow('Moved at "/big": a bigint of more than 1024 digits does not travel');
    expect(() => encode(Object.assign(sample(), { big: -(10n ** 1024n - 1n) }))).not.toThrow();
    const many = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`field-${i}`, when]));
    expect(() => encode(Object.assign(sample(), { odd: many }))).toThrow(/datatypes .* take \d+ characters; at most 65536 travel/);
  });
});
