import type { DomainEventRegistration, EventRegistry } from '../registry/event-registry.js';
import { decodeExtensions, encodeExtensions, type EnvelopeExtensions } from './envelope-extensions.js';

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
  /** Correlation and trace context, each checked (see envelope-extensions.ts). */
  readonly extensions: EnvelopeExtensions;
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Distinct `datatypes` values kept encoded or parsed; an application has a handful (one per event shape). */
const MAX_CACHED_SHAPES = 1_000;
const decoder = new TextDecoder('utf-8', { fatal: true });
const NO_BYTES = Buffer.alloc(0);
const TIME_END = Buffer.from('","datacontenttype":"application/json"');
const DATA = Buffer.from(',"data":');
const CLOSE_BRACE = 0x7d;
const bigintReplacer = (_key: string, value: unknown) => (typeof value === 'bigint' ? value.toString() : value);

/** Copies the own data of a parsed JSON object onto a new instance of `proto`, never touching a prototype. */
function instantiate(proto: object, data: Record<string, unknown>): Record<string, unknown> {
  const instance = Object.create(proto) as Record<string, unknown>;
  for (const key in data) {
    // Spelled out rather than UNSAFE_KEYS.has(): this runs for every field of every event.
    if (key !== '__proto__' && key !== 'constructor' && key !== 'prototype') instance[key] = data[key];
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
/** One `datatypes` entry, parsed: the path into `data` and the tag. */
interface TypeEntry {
  readonly pointer: string;
  readonly path: readonly string[];
  readonly tag: string;
}

function entryError(type: string, id: string, entry: TypeEntry, why: string): DecodeError {
  return new DecodeError(`"${type}" ${id}: datatypes ${JSON.stringify(entry.pointer)}: ${why}`);
}

/** A bounded cache: cleared when full, as the set of shapes of a running application is small and stable. */
function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= MAX_CACHED_SHAPES) cache.clear();
  cache.set(key, value);
  return value;
}

export class EventCodec {
  /** The envelope's first bytes, the same for every event of this instance. */
  private readonly ownPrefix: Buffer;
  private readonly sourceJson: string;
  /** Per registration: the envelope from `"type"` up to the opening quote of `time`, as bytes. */
  private readonly typeParts = new Map<DomainEventRegistration, Buffer>();
  /** Shape signature (pointers and tags, as the walk met them) -> the bytes of `,"datatypes":"…"`. */
  private readonly encodedShapes = new Map<string, Buffer>();
  /** `datatypes` string -> its parsed entries. */
  private readonly decodedShapes = new Map<string, TypeEntry[]>();
  // Scratch state of one encode() call: encoding is synchronous, so one set per codec suffices.
  private signature = '';
  private hasBigInt = false;

  constructor(
    private readonly registry: EventRegistry,
    origin: string,
    source: string,
  ) {
    this.ownPrefix = Buffer.from(`{"specversion":"1.0","origin":${JSON.stringify(origin)},"id":`);
    this.sourceJson = JSON.stringify(source);
  }

  /**
   * The JSON bytes of one event. What is the same for every event (the attributes but id, time and
   * data) is encoded once; per event only id, time, extensions and data are. Throws EncodeError for
   * data the receiving side could not rebuild.
   */
  encode(event: object, registration: DomainEventRegistration, id: string, time: string, extensions?: EnvelopeExtensions): Uint8Array {
    this.signature = '';
    this.hasBigInt = false;
    this.walkObject(event, '', registration.name);
    const data = JSON.stringify(event, this.hasBigInt ? bigintReplacer : undefined);
    const types = this.signature === '' ? NO_BYTES : (this.encodedShapes.get(this.signature) ?? this.encodeShape(this.signature));
    const typePart = this.typeParts.get(registration) ?? this.encodeTypePart(registration);
    const idJson = JSON.stringify(id);
    const idLength = Buffer.byteLength(idJson);
    const dataLength = Buffer.byteLength(data);
    const extensionJson = extensions ? encodeExtensions(extensions) : '';
    const extensionLength = Buffer.byteLength(extensionJson);
    const prefix = this.ownPrefix;
    const out = Buffer.allocUnsafe(
      prefix.length + idLength + typePart.length + time.length + TIME_END.length + types.length + extensionLength + DATA.length + dataLength + 1,
    );
    let at = prefix.copy(out, 0);
    at += out.write(idJson, at, idLength, 'utf8');
    at += typePart.copy(out, at);
    at += out.write(time, at, time.length, 'latin1');
    at += TIME_END.copy(out, at);
    at += types.copy(out, at);
    if (extensionLength > 0) at += out.write(extensionJson, at, extensionLength, 'utf8');
    at += DATA.copy(out, at);
    at += out.write(data, at, dataLength, 'utf8');
    out[at] = CLOSE_BRACE;
    return out;
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
      extensions: decodeExtensions(envelope),
    };
  }

  private tag(pointer: string, tag: string): void {
    this.signature += `${pointer}\u0000${tag}\u0001`;
  }

  private encodeShape(signature: string): Buffer {
    const types: Record<string, string> = {};
    for (const entry of signature.split('\u0001')) {
      const [pointer, tag] = entry.split('\u0000');
      if (tag !== undefined) types[pointer] = tag;
    }
    return remember(this.encodedShapes, signature, Buffer.from(`,"datatypes":${JSON.stringify(JSON.stringify(types))}`));
  }

  private encodeTypePart(registration: DomainEventRegistration): Buffer {
    const part = Buffer.from(`,"type":${JSON.stringify(registration.name)},"source":${this.sourceJson},"time":"`);
    this.typeParts.set(registration, part);
    return part;
  }

  private decodeShape(datatypes: unknown, fail: (why: string) => DecodeError): TypeEntry[] {
    let types: unknown;
    try {
      types = typeof datatypes === 'string' ? JSON.parse(datatypes) : undefined;
    } catch {
      // reported below
    }
    if (typeof types !== 'object' || types === null || Array.isArray(types)) throw fail('"datatypes" must be a string holding a JSON object');
    const entries: TypeEntry[] = [];
    for (const pointer in types) {
      const tag = (types as Record<string, unknown>)[pointer];
      if (typeof tag !== 'string' || !pointer.startsWith('/')) throw fail(`datatypes ${JSON.stringify(pointer)}: expected "/pointer": "tag"`);
      const path = pointer.slice(1).split('/').map(unescapePointerToken);
      if (path.some((token) => UNSAFE_KEYS.has(token))) throw fail(`datatypes ${JSON.stringify(pointer)}: refers to a forbidden key`);
      entries.push({ pointer, path, tag });
    }
    return remember(this.decodedShapes, datatypes as string, entries);
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
    const entries =
      (typeof datatypes === 'string' && this.decodedShapes.get(datatypes)) || this.decodeShape(datatypes, (why) => new DecodeError(`"${type}" ${id}: ${why}`));
    for (const entry of entries) {
      const { path, tag } = entry;
      let parent: Record<string, unknown> = event;
      const last = path.length - 1;
      for (let i = 0; i < last; i++) {
        const value = Object.hasOwn(parent, path[i]) ? parent[path[i]] : undefined;
        if (typeof value !== 'object' || value === null) throw entryError(type, id, entry, 'passes through a value that is not an object');
        parent = value as Record<string, unknown>;
      }
      const key = path[last];
      if (tag === 'undefined') parent[key] = undefined;
      else if (!Object.hasOwn(parent, key)) throw entryError(type, id, entry, 'refers to a missing field');
      else {
        const revived = this.revive(tag, parent[key]);
        if (typeof revived === 'string') throw entryError(type, id, entry, revived);
        parent[key] = revived;
      }
    }
  }

  /** The value a tag stands for, or why the JSON value cannot be it (a string). */
  private revive(tag: string, value: unknown): unknown {
    switch (tag) {
      case 'Date': {
        if (value === null) return new Date(NaN); // an Invalid Date is sent as null
        const date = new Date(value as string);
        return typeof value !== 'string' || Number.isNaN(date.getTime()) ? 'is not a valid date' : date;
      }
      case 'bigint':
        return typeof value !== 'string' || !/^-?\d+$/.test(value) ? 'is not an integer string' : BigInt(value);
      default: {
        const registration = this.registry.valueObjectByName(tag);
        if (!registration) return `"${tag}" is not a registered @ValueObject`;
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
        return instantiate(registration.type.prototype, value as Record<string, unknown>);
      }
    }
  }
}
