import type { DomainEventRegistration, EventRegistry } from './event-registry.js';

/** A message that cannot become an event: malformed, foreign to the registry, or not fitting its class. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** An event that cannot be put on the wire (for example a nested instance of an unregistered class). */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

/** The CloudEvents attributes of a received event, beside the rebuilt instance. */
export interface DecodedEvent {
  readonly event: object;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string | undefined;
  readonly origin: string | undefined;
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const decoder = new TextDecoder('utf-8', { fatal: true });
const bigintReplacer = (_key: string, value: unknown) => (typeof value === 'bigint' ? value.toString() : value);

/** Copies the own data of a parsed JSON object onto a new instance of `proto`, never touching a prototype. */
function instantiate(proto: object, data: Record<string, unknown>): Record<string, unknown> {
  const instance = Object.create(proto) as Record<string, unknown>;
  for (const key in data) {
    if (!UNSAFE_KEYS.has(key)) instance[key] = data[key];
  }
  return instance;
}

function escapePointerToken(key: string): string {
  return key.indexOf('~') === -1 && key.indexOf('/') === -1 ? key : key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointerToken(token: string): string {
  return token.indexOf('~') === -1 ? token : token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * CloudEvents 1.0, structured JSON mode. `data` is plain JSON any language can read; what JSON
 * cannot say (Dates, bigints, undefined, value object classes) travels beside it in the string
 * extension attribute `datatypes`: a JSON object of RFC 6901 pointers into `data` to type tags.
 *
 * The envelope starts with `origin`, so an instance recognises its own broadcasts by comparing
 * a few bytes, without parsing them.
 */
export class EventCodec {
  private readonly head: string;
  private readonly ownPrefix: Uint8Array;
  private readonly sourceJson: string;
  // Scratch state of one encode() call: encoding is synchronous, so one set per codec suffices.
  private types: Record<string, string> | undefined;
  private hasBigInt = false;

  constructor(
    private readonly registry: EventRegistry,
    origin: string,
    source: string,
  ) {
    this.head = `{"specversion":"1.0","origin":${JSON.stringify(origin)},`;
    this.ownPrefix = new TextEncoder().encode(this.head);
    this.sourceJson = JSON.stringify(source);
  }

  /** The JSON text of one event. Throws EncodeError for data the receiving side could not rebuild. */
  encode(event: object, registration: DomainEventRegistration, id: string, time: string): string {
    this.types = undefined;
    this.hasBigInt = false;
    this.walkObject(event, '', registration.name);
    const data = JSON.stringify(event, this.hasBigInt ? bigintReplacer : undefined);
    const types = this.types === undefined ? '' : `,"datatypes":${JSON.stringify(JSON.stringify(this.types))}`;
    return (
      `${this.head}"id":${JSON.stringify(id)},"type":${JSON.stringify(registration.name)},"source":${this.sourceJson},` +
      `"time":"${time}","datacontenttype":"application/json"${types},"data":${data}}`
    );
  }

  /** True when the message was encoded by this codec's instance (its own broadcast coming back). */
  isOwn(data: Uint8Array): boolean {
    const prefix = this.ownPrefix;
    if (data.length < prefix.length) return false;
    for (let i = prefix.length - 1; i >= 0; i--) {
      if (data[i] !== prefix[i]) return false;
    }
    return true;
  }

  /** Rebuilds an event from its JSON text. Throws DecodeError for anything that is not a registered event. */
  decode(data: Uint8Array | string): DecodedEvent {
    let envelope: Record<string, unknown>;
    try {
      envelope = JSON.parse(typeof data === 'string' ? data : decoder.decode(data));
    } catch (error) {
      throw new DecodeError(`malformed JSON: ${(error as Error).message}`);
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
      throw new DecodeError('the body is not a JSON object');
    }
    const { type, id } = envelope;
    if (typeof type !== 'string' || type === '') throw new DecodeError('the CloudEvents "type" attribute is missing');
    if (typeof id !== 'string' || id === '') throw new DecodeError(`"${type}": the CloudEvents "id" attribute is missing`);
    const registration = this.registry.eventByName(type);
    if (!registration) throw new DecodeError(`"${type}" is not a registered @DomainEvent type`);

    const payload = envelope.data ?? {};
    if (typeof payload !== 'object' || Array.isArray(payload)) {
      throw new DecodeError(`"${type}" ${id}: "data" must be a JSON object`);
    }
    const event = instantiate(registration.type.prototype, payload as Record<string, unknown>);
    if (envelope.datatypes !== undefined) this.applyTypes(event, envelope.datatypes, type, id);

    const { source, time, origin } = envelope;
    return {
      event,
      id,
      type,
      source: typeof source === 'string' ? source : '',
      time: typeof time === 'string' ? time : undefined,
      origin: typeof origin === 'string' ? origin : undefined,
    };
  }

  private tag(pointer: string, tag: string): void {
    (this.types ??= {})[pointer] = tag;
  }

  private walkObject(node: object, pointer: string, where: string): void {
    const record = node as Record<string, unknown>;
    for (const key in record) {
      const value = record[key];
      if (value === undefined) this.tag(`${pointer}/${escapePointerToken(key)}`, 'undefined');
      else if (typeof value === 'object' || typeof value === 'bigint') {
        this.visit(value, `${pointer}/${escapePointerToken(key)}`, where);
      }
    }
  }

  private visit(value: object | bigint | null, pointer: string, where: string): void {
    if (value === null) return;
    if (typeof value === 'bigint') {
      this.hasBigInt = true;
      this.tag(pointer, 'bigint');
      return;
    }
    if (value instanceof Date) {
      this.tag(pointer, 'Date');
      return;
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (item === undefined) this.tag(`${pointer}/${i}`, 'undefined');
        else if (typeof item === 'object' || typeof item === 'bigint') this.visit(item, `${pointer}/${i}`, where);
      }
      return;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const type = proto.constructor;
      const registration = type && this.registry.valueObjectByType(type);
      if (!registration) {
        throw new EncodeError(
          `${where} at "${pointer}": ${type?.name ?? 'an object'} is not a registered value object; ` +
            'decorate its class with @ValueObject() or use plain objects and arrays',
        );
      }
      this.tag(pointer, registration.name);
    }
    this.walkObject(value, pointer, where);
  }

  private applyTypes(event: Record<string, unknown>, datatypes: unknown, type: string, id: string): void {
    let types: unknown;
    try {
      types = typeof datatypes === 'string' ? JSON.parse(datatypes) : undefined;
    } catch {
      // reported below
    }
    if (typeof types !== 'object' || types === null || Array.isArray(types)) {
      throw new DecodeError(`"${type}" ${id}: "datatypes" must be a string holding a JSON object`);
    }
    for (const pointer in types) {
      const tag = (types as Record<string, unknown>)[pointer];
      const fail = (why: string) => new DecodeError(`"${type}" ${id}: datatypes ${JSON.stringify(pointer)}: ${why}`);
      if (typeof tag !== 'string' || !pointer.startsWith('/')) throw fail('expected "/pointer": "tag"');
      const tokens = pointer.slice(1).split('/');
      let parent: Record<string, unknown> = event;
      for (let i = 0; i < tokens.length; i++) {
        const token = unescapePointerToken(tokens[i]);
        if (UNSAFE_KEYS.has(token)) throw fail('refers to a forbidden key');
        const last = i === tokens.length - 1;
        if (last && tag === 'undefined') {
          parent[token] = undefined;
          break;
        }
        if (!Object.hasOwn(parent, token)) throw fail('refers to a missing field');
        const value = parent[token];
        if (last) {
          parent[token] = this.revive(tag, value, fail);
          break;
        }
        if (typeof value !== 'object' || value === null) throw fail('passes through a value that is not an object');
        parent = value as Record<string, unknown>;
      }
    }
  }

  private revive(tag: string, value: unknown, fail: (why: string) => DecodeError): unknown {
    switch (tag) {
      case 'Date': {
        if (value === null) return new Date(NaN); // an Invalid Date is sent as null
        const date = new Date(value as string);
        if (typeof value !== 'string' || Number.isNaN(date.getTime())) throw fail('is not a valid date');
        return date;
      }
      case 'bigint':
        if (typeof value !== 'string' || !/^-?\d+$/.test(value)) throw fail('is not an integer string');
        return BigInt(value);
      default: {
        const registration = this.registry.valueObjectByName(tag);
        if (!registration) throw fail(`"${tag}" is not a registered @ValueObject`);
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('is not a JSON object');
        return instantiate(registration.type.prototype, value as Record<string, unknown>);
      }
    }
  }
}
