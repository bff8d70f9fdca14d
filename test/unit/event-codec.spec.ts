import 'reflect-metadata';
import { DecodeError, EncodeError, EventCodec } from '../../lib/codec/event-codec.js';
import { EventRegistry } from '../../lib/registry/event-registry.js';

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
const codec = new EventCodec(registry, 'instance-a', '/tests');
const other = new EventCodec(registry, 'instance-b', '/tests');

const when = new Date('2026-11-24T10:00:00.123Z');
const sample = () =>
  new Moved(
    'p1', when, new Point(3, -4), [new Badge('first', when, new Point(1, 1))], [new Point(0, 0), null, undefined],
    123456789012345678901234567890n, -42n, null, undefined, { 'a/b': when, 'til~de': 1n, nested: { deep: [new Point(9, 9)] } }, new Date(NaN),
  );
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const encode = (event: object, id = 'id-1') => text(codec.encode(event, moved, id, '2026-11-24T10:00:00.200Z'));
const bytes = (json: string) => new TextEncoder().encode(json);

describe('EventCodec', () => {
  it('round-trips class instances exactly: Dates, value objects (nested, in arrays), null, undefined, bigint', () => {
    const { event } = codec.decode(bytes(encode(sample())));
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
    const envelope = JSON.parse(text(codec.encode(plain, registry.eventByName('Plain')!, 'id', 't')));
    expect(envelope).not.toHaveProperty('datatypes');
    expect(codec.decode(JSON.stringify(envelope)).event).toEqual(plain);
  });

  it('tells its own messages from other instances\' by their first bytes', () => {
    expect(codec.isOwn(bytes(encode(sample())))).toBe(true);
    expect(codec.isOwn(other.encode(sample(), moved, 'id', 't'))).toBe(false);
    expect(codec.isOwn(bytes('{"specversion":"1.0"}'))).toBe(false);
  });

  it('accepts a CloudEvent from another producer: no origin, no datatypes', () => {
    const foreign = { specversion: '1.0', id: 'go-1', source: '/go', type: 'Moved', data: { who: 'p2', when: '2026-01-01T00:00:00Z' } };
    const decoded = codec.decode(JSON.stringify(foreign));
    expect(decoded).toMatchObject({ id: 'go-1', type: 'Moved', source: '/go', origin: undefined, time: undefined });
    expect(decoded.event).toBeInstanceOf(Moved);
    expect((decoded.event as Moved).when).toBe('2026-01-01T00:00:00Z');
  });

  it.each([
    ['malformed JSON', 'not json', /malformed JSON/],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /malformed JSON/],
    ['an array body', '[1,2]', /not a JSON object/],
    ['a string body', '"text"', /not a JSON object/],
    ['a null body', 'null', /not a JSON object/],
    ['a missing type', '{"id":"x"}', /"type" attribute is missing/],
    ['a missing id', '{"type":"Moved"}', /"id" attribute is missing/],
    ['an unknown type', '{"id":"x","type":"Nope"}', /"Nope" is not a registered @DomainEvent type/],
    ['data that is not an object', '{"id":"x","type":"Moved","data":[1]}', /"data" must be a JSON object/],
    ['datatypes that is not a string', '{"id":"x","type":"Moved","data":{},"datatypes":{"/a":"Date"}}', /must be a string holding a JSON object/],
    ['datatypes to a missing field', '{"id":"x","type":"Moved","data":{},"datatypes":"{\\"/when\\":\\"Date\\"}"}', /refers to a missing field/],
    ['an unknown value object', '{"id":"x","type":"Moved","data":{"to":{}},"datatypes":"{\\"/to\\":\\"Nope\\"}"}', /"Nope" is not a registered @ValueObject/],
    ['an invalid date', '{"id":"x","type":"Moved","data":{"when":"yesterday"},"datatypes":"{\\"/when\\":\\"Date\\"}"}', /not a valid date/],
    ['a bad bigint', '{"id":"x","type":"Moved","data":{"big":"1.5"},"datatypes":"{\\"/big\\":\\"bigint\\"}"}', /not an integer string/],
    ['a value object that is not an object', '{"id":"x","type":"Moved","data":{"to":3},"datatypes":"{\\"/to\\":\\"Point\\"}"}', /is not a JSON object/],
    ['a pointer through a scalar', '{"id":"x","type":"Moved","data":{"to":3},"datatypes":"{\\"/to/x\\":\\"Date\\"}"}', /not an object/],
    ['a pointer through __proto__', '{"id":"x","type":"Moved","data":{},"datatypes":"{\\"/__proto__/polluted\\":\\"Date\\"}"}', /forbidden key/],
    ['a pointer to constructor', '{"id":"x","type":"Moved","data":{},"datatypes":"{\\"/constructor\\":\\"undefined\\"}"}', /forbidden key/],
  ])('rejects %s with a DecodeError', (_case, body, message) => {
    const attempt = () => codec.decode(typeof body === 'string' ? bytes(body) : body);
    expect(attempt).toThrow(DecodeError);
    expect(attempt).toThrow(message);
  });

  it('never lets wire data reach a prototype', () => {
    const hostile =
      '{"id":"x","type":"Moved","data":{"who":"p","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},' +
      '"to":{"x":1,"__proto__":{"polluted":true}}},"datatypes":"{\\"/to\\":\\"Point\\"}"}';
    const { event } = codec.decode(hostile);
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
});
