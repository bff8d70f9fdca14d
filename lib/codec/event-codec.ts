import type { MessageHeaders } from '../message-headers.js';
import { quoted } from '../printable.js';
import type { DomainEventRegistration, EventRegistry } from '../registry/event-registry.js';
import { tokenProblem } from '../routing/subject-token.js';
import { ATTRIBUTE_PREFIX, binaryAttributes, encodeHeaderValue, headerValue } from './binary-headers.js';
import { idProblem, isJsonContentType, isTimestamp, JSON_CONTENT_TYPE, sourceProblem, SPEC_VERSION } from './cloudevents-attributes.js';
import { DecodeError, EncodeError, messageLabel, type DecodeFailure } from './codec-errors.js';
import { DatatypesReader, DatatypesWriter } from './datatypes.js';
import { instantiate, isJsonObject, parseWireJson, utf8 } from './wire-json.js';
import { decodeExtensions, encodeExtensions, type EnvelopeExtensions } from './envelope-extensions.js';

/** What a codec is made for: this instance's attributes, the subjects' prefix, and the largest message. */
export interface CodecSettings {
  /** This instance's id, the `origin` of what it encodes. */
  readonly origin: string;
  readonly source: string;
  readonly subjectPrefix: string;
  readonly maxMessageBytes: number;
}

/** The CloudEvents attributes of a received event, beside the rebuilt instance. */
export interface DecodedEvent {
  readonly event: object;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string | undefined;
  readonly origin: string | undefined;
  /** The routing key: the subject's token after the type, if any. */
  readonly key: string | undefined;
  /**
   * Every attribute as received (the structured envelope's members, or a binary message's `ce-`
   * headers, decoded): where extension attributes such as `traceparent` are read.
   */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Correlation and trace context, each checked (see envelope-extensions.ts). */
  readonly extensions: EnvelopeExtensions;
}

/** An event in binary content mode: attributes in headers, data in the body. */
export interface BinaryMessage {
  readonly body: Uint8Array;
  readonly headers: MessageHeaders;
}

type Header = readonly [string, readonly string[]];
const header = (name: string, value: string): Header => [ATTRIBUTE_PREFIX + name, [value]];

const NO_BYTES = Buffer.alloc(0);
const TIME_END = Buffer.from(`","datacontenttype":"${JSON_CONTENT_TYPE}"`);
const DATA = Buffer.from(',"data":');
const CLOSE_BRACE = 0x7d;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const SPEC_VERSION_HEADER = header('specversion', SPEC_VERSION);
const CONTENT_TYPE_HEADER = header('datacontenttype', JSON_CONTENT_TYPE);
const bigintReplacer = (_key: string, value: unknown) => (typeof value === 'bigint' ? value.toString() : value);

/**
 * CloudEvents 1.0 in JSON: structured mode (the envelope in the body) and binary mode (attributes
 * in `ce-` headers, the data in the body), both read whichever the producer chose. `data` is plain
 * JSON any language can read; what JSON cannot say (Dates, bigints, undefined, value object
 * classes) travels beside it in the extension attribute `datatypes`.
 *
 * Everything decoded comes from the wire and is checked before it is trusted: sizes before parsing,
 * every required attribute, the type against the subject it came on. A structured envelope starts
 * with `origin`, so an instance recognises its own broadcasts by a few bytes, without parsing them.
 */
export class EventCodec {
  /** The envelope's first bytes, the same for every event of this instance. */
  private readonly ownPrefix: Buffer;
  private readonly sourceJson: string;
  private readonly prefixDot: string;
  private readonly maxMessageBytes: number;
  /** Per registration (bounded by the application's classes): `<prefix>.<type>`. */
  private readonly subjectBases = new Map<DomainEventRegistration, string>();
  /** Per registration: the envelope from `"type"` up to the opening quote of `time`. */
  private readonly typeParts = new Map<DomainEventRegistration, Buffer>();
  /** Per registration: the binary-mode headers that are the same for every event of it. */
  private readonly binaryHeaders = new Map<DomainEventRegistration, readonly Header[]>();
  private readonly originHeader: string;
  private readonly writer: DatatypesWriter;
  private readonly reader: DatatypesReader;
  /** The last `source` found valid: events come from a handful of sources, so most skip the check. */
  private validSource: string;
  /** The last `time` found valid: the events of one millisecond share it. */
  private validTime = '';

  constructor(
    private readonly registry: EventRegistry,
    private readonly settings: CodecSettings,
  ) {
    this.ownPrefix = Buffer.from(`{"specversion":"${SPEC_VERSION}","origin":${JSON.stringify(settings.origin)},"id":`);
    this.sourceJson = JSON.stringify(settings.source);
    this.prefixDot = `${settings.subjectPrefix}.`;
    this.maxMessageBytes = settings.maxMessageBytes;
    this.originHeader = encodeHeaderValue(settings.origin);
    this.validSource = settings.source;
    this.writer = new DatatypesWriter(registry);
    this.reader = new DatatypesReader(registry);
  }

  /**
   * The structured-mode JSON bytes of one event. What is the same for every event (the attributes
   * but id, time and data) is encoded once; per event only id, time, extensions and data are. Throws
   * EncodeError for data the receiving side could not rebuild, or a message over maxMessageBytes.
   */
  encode(event: object, registration: DomainEventRegistration, id: string, time: string, extensions?: EnvelopeExtensions): Uint8Array {
    const shape = this.writer.shapeOf(event, registration.name);
    const data = JSON.stringify(event, this.writer.hasBigInt ? bigintReplacer : undefined);
    const types = shape === undefined ? NO_BYTES : shape.structured;
    const typePart = this.typeParts.get(registration) ?? this.encodeTypePart(registration);
    const idJson = JSON.stringify(id);
    const idLength = Buffer.byteLength(idJson);
    const dataLength = Buffer.byteLength(data);
    const extensionJson = extensions ? encodeExtensions(extensions) : '';
    const extensionLength = Buffer.byteLength(extensionJson);
    const prefix = this.ownPrefix;
    const size = prefix.length + idLength + typePart.length + time.length + TIME_END.length + types.length + extensionLength + DATA.length + dataLength + 1;
    this.checkSize(size, registration, id);
    const out = Buffer.allocUnsafe(size);
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

  /** The event in binary mode: `ce-` headers (percent-encoded values) and the JSON data as the body. */
  encodeBinary(event: object, registration: DomainEventRegistration, id: string, time: string, extensions?: EnvelopeExtensions): BinaryMessage {
    const shape = this.writer.shapeOf(event, registration.name);
    const body = Buffer.from(JSON.stringify(event, this.writer.hasBigInt ? bigintReplacer : undefined));
    const headers = [...(this.binaryHeaders.get(registration) ?? this.encodeBinaryHeaders(registration)), header('id', encodeHeaderValue(id)), header('time', time)];
    if (shape !== undefined) headers.push(shape.header);
    if (extensions) for (const [name, value] of Object.entries(extensions)) if (value !== undefined) headers.push(header(name, encodeHeaderValue(value)));
    let size = body.length;
    for (const [name, [value]] of headers) size += name.length + value.length + 4; // "name: value\r\n"
    this.checkSize(size, registration, id);
    return { body, headers };
  }

  /** True when the message was encoded by this codec's instance (its own broadcast coming back). */
  isOwn(data: Uint8Array, headers: MessageHeaders | undefined): boolean {
    const prefix = this.ownPrefix;
    if (data.length >= prefix.length) {
      let i = prefix.length - 1;
      while (i >= 0 && data[i] === prefix[i]) i--;
      if (i < 0) return true;
    }
    return headers !== undefined && headerValue(headers, 'ce-origin') === this.originHeader;
  }

  /**
   * Rebuilds an event from a message: structured (the envelope in the body) or binary (`ce-`
   * headers). Throws DecodeError for anything that is not a valid CloudEvent of a registered type
   * on its own type's subject.
   */
  decode(subject: string, data: Uint8Array | string, headers?: MessageHeaders): DecodedEvent {
    if (data.length > this.maxMessageBytes) {
      throw new DecodeError('too-large', `the message is ${data.length} bytes; at most ${this.maxMessageBytes} are accepted (maxMessageBytes)`);
    }
    const binary = headers === undefined ? undefined : binaryAttributes(headers);
    let attributes: Record<string, unknown>;
    if (binary) attributes = binary;
    else {
      const envelope = parseWireJson(typeof data === 'string' ? data : utf8(data, 'the body'), 'the body');
      if (!isJsonObject(envelope)) throw new DecodeError('malformed', 'the body is not a JSON object');
      attributes = envelope;
    }
    const { type, id, source, time, origin } = attributes;
    if (typeof type !== 'string' || type === '') throw new DecodeError('attribute', `the CloudEvents "type" attribute is missing${binary ? ' (binary mode: no ce-type header)' : ''}`);
    const registration = this.registry.eventByName(type);
    if (!registration) throw new DecodeError('unknown-type', `${quoted(type)} is not a registered @DomainEvent type`);
    const key = this.keyOf(subject, registration, id);
    this.checkAttributes(attributes, type, id);

    const payload = binary ? this.binaryData(data, type, id) : this.structuredData(attributes, type, id);
    if (payload === undefined || payload === null) {
      throw this.fail('data', type, id, '"data" is missing; an event\'s data is a JSON object ({} for an event without fields)');
    }
    if (!isJsonObject(payload)) throw this.fail('data', type, id, '"data" must be a JSON object');
    const event = instantiate(registration.type.prototype, payload);
    if (attributes.datatypes !== undefined) this.reader.apply(event, attributes.datatypes, type, id as string);
    return {
      event,
      id: id as string,
      type,
      source: source as string,
      time: time as string | undefined,
      origin: typeof origin === 'string' ? origin : undefined,
      key,
      attributes,
      extensions: decodeExtensions(attributes),
    };
  }

  private checkSize(size: number, registration: DomainEventRegistration, id: string): void {
    if (size <= this.maxMessageBytes) return;
    throw new EncodeError(
      `${registration.name} ${id}: the encoded event is ${size} bytes, more than maxMessageBytes (${this.maxMessageBytes}); ` +
        'send less data, or raise EVENT_BUS_MAX_MESSAGE_BYTES (and the server\'s max_payload)',
    );
  }

  /** `<prefix>.<type>`: the subject of a registration's events without a key. */
  subjectBase(registration: DomainEventRegistration): string {
    let base = this.subjectBases.get(registration);
    if (base === undefined) {
      base = this.prefixDot + registration.name;
      this.subjectBases.set(registration, base);
    }
    return base;
  }

  /** The routing key from `<prefix>.<type>[.<key>]`; a subject of another type is refused (NATS permissions are per subject). */
  private keyOf(subject: string, registration: DomainEventRegistration, id: unknown): string | undefined {
    const base = this.subjectBase(registration);
    if (subject === base) return undefined;
    if (subject.length > base.length + 1 && subject.charCodeAt(base.length) === 0x2e && subject.startsWith(base)) {
      const key = subject.slice(base.length + 1);
      if (tokenProblem(key) === undefined) return key;
    }
    throw this.fail('subject', registration.name, id, `the type does not match the subject ${quoted(subject)}: events of this type come on ${base}[.<key>]`);
  }

  private checkAttributes(attributes: Record<string, unknown>, type: string, id: unknown): void {
    const { specversion, source, time, datacontenttype } = attributes;
    if (specversion !== SPEC_VERSION) {
      throw this.fail('attribute', type, id, specversion === undefined ? '"specversion" is missing' : `"specversion" is ${quoted(specversion)}; only "${SPEC_VERSION}" is read`);
    }
    const idIssue = idProblem(id);
    if (idIssue) throw this.fail('attribute', type, id, `"id" ${idIssue}`);
    if (source !== this.validSource) {
      const problem = sourceProblem(source);
      if (problem) throw this.fail('attribute', type, id, `"source" ${problem}`);
      this.validSource = source as string;
    }
    if (time !== undefined && time !== this.validTime) {
      if (!isTimestamp(time)) throw this.fail('attribute', type, id, `"time" ${quoted(time)} is not an RFC 3339 timestamp`);
      this.validTime = time as string;
    }
    if (datacontenttype !== undefined && !isJsonContentType(datacontenttype)) {
      throw this.fail('data', type, id, `"datacontenttype" is ${quoted(datacontenttype)}; only JSON data is read`);
    }
  }

  /** `data`, or the JSON in `data_base64` (what SDKs send for binary data). */
  private structuredData(attributes: Record<string, unknown>, type: string, id: unknown): unknown {
    const { data, data_base64: base64 } = attributes;
    if (base64 === undefined) return data;
    if (data !== undefined) throw this.fail('data', type, id, 'has both "data" and "data_base64"');
    if (typeof base64 !== 'string' || !BASE64.test(base64)) throw this.fail('malformed', type, id, '"data_base64" is not base64');
    return parseWireJson(utf8(Buffer.from(base64, 'base64'), '"data_base64"'), `${messageLabel(type, id)}: "data_base64"`);
  }

  /** The body of a binary-mode message: the JSON data, none when empty. */
  private binaryData(body: Uint8Array | string, type: string, id: unknown): unknown {
    if (body.length === 0) return undefined;
    return parseWireJson(typeof body === 'string' ? body : utf8(body, 'the body'), `${messageLabel(type, id)}: the body`);
  }

  private fail(reason: DecodeFailure, type: string, id: unknown, why: string): DecodeError {
    return new DecodeError(reason, `${messageLabel(type, id)}: ${why}`);
  }

  private encodeTypePart(registration: DomainEventRegistration): Buffer {
    const part = Buffer.from(`,"type":${JSON.stringify(registration.name)},"source":${this.sourceJson},"time":"`);
    this.typeParts.set(registration, part);
    return part;
  }

  private encodeBinaryHeaders(registration: DomainEventRegistration): readonly Header[] {
    const headers = [
      SPEC_VERSION_HEADER,
      header('origin', this.originHeader),
      header('type', encodeHeaderValue(registration.name)),
      header('source', encodeHeaderValue(this.settings.source)),
      CONTENT_TYPE_HEADER,
    ];
    this.binaryHeaders.set(registration, headers);
    return headers;
  }
}
