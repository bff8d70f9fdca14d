import { BoundedCache } from '../bounded-cache.js';
import { quoted } from '../printable.js';
import type { EventRegistry } from '../registry/event-registry.js';
import { encodeHeaderValue } from './binary-headers.js';
import { DecodeError, EncodeError, messageLabel } from './codec-errors.js';
import { instantiate, isJsonObject, parseWireJson } from './wire-json.js';
import { MAX_BIGINT_DIGITS, MAX_DATATYPES_LENGTH, MAX_DATE_LENGTH } from './wire-limits.js';

/**
 * `datatypes`, the extension attribute that says what JSON cannot: a string holding a JSON object
 * of RFC 6901 pointers into `data` to type tags (`Date`, `bigint`, `undefined`, a value object's
 * name). Each distinct one (an event shape) is encoded and parsed once; the caches are bounded
 * by count and bytes, as distinct shapes can come from the wire without end.
 */
const MAX_CACHED_SHAPES = 1_000;
const MAX_CACHED_BYTES = 4 * 1024 * 1024;
/** Heap per character of a parsed `datatypes` (pointer strings, paths, entries), measured. */
const PARSED_BYTES_PER_CHAR = 10;
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** |value| below 10^MAX_BIGINT_DIGITS: at most that many digits. */
const BIGINT_BOUND = 10n ** BigInt(MAX_BIGINT_DIGITS);
const CANONICAL_INDEX = /^(?:0|[1-9]\d*)$/;

/** One event shape, encoded: the `datatypes` JSON text, in the envelope and as a binary-mode header. */
export interface EncodedShape {
  readonly json: string;
  /** `,"datatypes":"…"`, ready to be copied into a structured envelope. */
  readonly structured: Buffer;
  readonly header: readonly [string, readonly string[]];
}

/** One `datatypes` entry, parsed: the path into `data` and the tag. */
interface TypeEntry {
  readonly pointer: string;
  readonly path: readonly string[];
  readonly tag: string;
}

function escapePointerToken(key: string): string {
  return key.indexOf('~') === -1 && key.indexOf('/') === -1 ? key : key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointerToken(token: string): string {
  return token.indexOf('~') === -1 ? token : token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Walks an event for what JSON cannot say. One walk at a time (encoding is synchronous). */
export class DatatypesWriter {
  private readonly shapes = new BoundedCache<string, EncodedShape>(MAX_CACHED_SHAPES, MAX_CACHED_BYTES);
  private signature = '';
  /** Whether the last walk met a bigint (JSON.stringify then needs a replacer). */
  hasBigInt = false;

  constructor(private readonly registry: EventRegistry) {}

  /** The shape of the event's extras, or undefined when JSON says it all. Throws EncodeError for what cannot travel. */
  shapeOf(event: object, where: string): EncodedShape | undefined {
    this.signature = '';
    this.hasBigInt = false;
    this.walkObject(event, '', where);
    if (this.signature === '') return undefined;
    return this.shapes.get(this.signature) ?? this.encodeShape(this.signature, where);
  }

  private encodeShape(signature: string, where: string): EncodedShape {
    const types: Record<string, string> = {};
    for (const entry of signature.split('\u0001')) {
      const [pointer, tag] = entry.split('\u0000');
      if (tag !== undefined) types[pointer] = tag;
    }
    const json = JSON.stringify(types);
    if (json.length > MAX_DATATYPES_LENGTH) {
      throw new EncodeError(
        `${where}: its datatypes (the Dates, bigints, value objects and undefined fields it holds) take ${json.length} characters; ` +
          `at most ${MAX_DATATYPES_LENGTH} travel. Send fewer typed fields, or send them as strings`,
      );
    }
    const shape: EncodedShape = {
      json,
      structured: Buffer.from(`,"datatypes":${JSON.stringify(json)}`),
      header: ['ce-datatypes', [encodeHeaderValue(json)]],
    };
    return this.shapes.set(signature, shape, 4 * (signature.length + json.length));
  }

  private tag(pointer: string, tag: string): void {
    this.signature += `${pointer}\u0000${tag}\u0001`;
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
      if (value >= BIGINT_BOUND || value <= -BIGINT_BOUND) {
        throw new EncodeError(`${where} at "${pointer}": a bigint of more than ${MAX_BIGINT_DIGITS} digits does not travel`);
      }
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
}

/** Applies `datatypes` to a rebuilt event: revives Dates, bigints and value objects where the pointers say. */
export class DatatypesReader {
  /** `datatypes` value -> its parsed entries; only shapes that applied cleanly are kept. */
  private readonly shapes = new BoundedCache<string, TypeEntry[]>(MAX_CACHED_SHAPES, MAX_CACHED_BYTES);
  /** The shape applied last: a stream of one event type repeats it, and a comparison is cheaper than hashing a new string. */
  private lastText?: string;
  private lastEntries: TypeEntry[] = [];

  constructor(private readonly registry: EventRegistry) {}

  /** Throws DecodeError when `datatypes` is malformed, too long, or does not fit the event of that type and id. */
  apply(event: Record<string, unknown>, datatypes: unknown, type: string, id: string): void {
    const cached = datatypes === this.lastText ? this.lastEntries : typeof datatypes === 'string' ? this.shapes.get(datatypes) : undefined;
    const entries = cached ?? this.parse(datatypes, messageLabel(type, id));
    for (const entry of entries) {
      const problem = this.applyEntry(event, entry);
      if (problem) throw new DecodeError('datatypes', `${messageLabel(type, id)}: datatypes ${quoted(entry.pointer)}: ${problem}`);
    }
    if (!cached) this.shapes.set(datatypes as string, entries, PARSED_BYTES_PER_CHAR * (datatypes as string).length);
    this.lastText = datatypes as string;
    this.lastEntries = entries;
  }

  private parse(datatypes: unknown, where: string): TypeEntry[] {
    if (typeof datatypes !== 'string') throw new DecodeError('datatypes', `${where}: "datatypes" must be a string holding a JSON object`);
    if (datatypes.length > MAX_DATATYPES_LENGTH) {
      throw new DecodeError('datatypes', `${where}: "datatypes" is ${datatypes.length} characters long; at most ${MAX_DATATYPES_LENGTH} are accepted`);
    }
    const types = parseWireJson(datatypes, `${where}: "datatypes"`);
    if (!isJsonObject(types)) throw new DecodeError('datatypes', `${where}: "datatypes" must be a string holding a JSON object`);
    const entries: TypeEntry[] = [];
    for (const pointer in types) {
      const tag = types[pointer];
      if (typeof tag !== 'string' || !pointer.startsWith('/')) throw new DecodeError('datatypes', `${where}: datatypes ${quoted(pointer)}: expected "/pointer": "tag"`);
      const path = pointer.slice(1).split('/').map(unescapePointerToken);
      if (path.some((token) => UNSAFE_KEYS.has(token))) throw new DecodeError('datatypes', `${where}: datatypes ${quoted(pointer)}: refers to a forbidden key`);
      entries.push({ pointer, path, tag });
    }
    return entries;
  }

  /** Applies one entry; returns why it does not fit, or undefined. */
  private applyEntry(event: Record<string, unknown>, { path, tag }: TypeEntry): string | undefined {
    let parent: Record<string, unknown> = event;
    const last = path.length - 1;
    for (let i = 0; i < last; i++) {
      const value = Object.hasOwn(parent, path[i]) ? parent[path[i]] : undefined;
      if (typeof value !== 'object' || value === null) return 'passes through a value that is not an object';
      parent = value as Record<string, unknown>;
    }
    const key = path[last];
    // In an array, only an existing slot: not "length", nor an index that would stretch it.
    if (Array.isArray(parent) && !(CANONICAL_INDEX.test(key) && Number(key) < parent.length)) return 'is not an index of the array';
    if (tag === 'undefined') parent[key] = undefined;
    else if (!Object.hasOwn(parent, key)) return 'refers to a missing field';
    else {
      const revived = this.revive(tag, parent[key]);
      if (typeof revived === 'string') return revived;
      parent[key] = revived;
    }
    return undefined;
  }

  /** The value a tag stands for, or why the JSON value cannot be it (a string). */
  private revive(tag: string, value: unknown): unknown {
    switch (tag) {
      case 'Date': {
        if (value === null) return new Date(NaN); // an Invalid Date is sent as null
        if (typeof value !== 'string') return 'is not a valid date';
        if (value.length > MAX_DATE_LENGTH) return `is longer than ${MAX_DATE_LENGTH} characters, not a date`;
        const date = new Date(value);
        return Number.isNaN(date.getTime()) ? 'is not a valid date' : date;
      }
      case 'bigint':
        if (typeof value !== 'string') return 'is not an integer string';
        if (value.length > MAX_BIGINT_DIGITS + (value.startsWith('-') ? 1 : 0)) return `has more than ${MAX_BIGINT_DIGITS} digits`;
        return /^-?\d+$/.test(value) ? BigInt(value) : 'is not an integer string';
      default: {
        const registration = this.registry.valueObjectByName(tag);
        if (!registration) return `${quoted(tag)} is not a registered @ValueObject`;
        if (!isJsonObject(value)) return 'is not a JSON object';
        return instantiate(registration.type.prototype, value);
      }
    }
  }
}
