import type { MessageHeaders } from '../message-headers.js';
import { DecodeError } from './codec-errors.js';

/**
 * Binary content mode of the CloudEvents NATS binding (1.0.3): every attribute in a header named
 * `ce-<attribute>` (names case-insensitive), values percent-encoded; the body is the data.
 */
export const ATTRIBUTE_PREFIX = 'ce-';
/** Header values may hold printable ASCII but space, `"` and `%`; everything else is percent-encoded. */
const NEEDS_ENCODING = /[^\x21\x23\x24\x26-\x7e]/u;
const NEEDS_ENCODING_ALL = /[^\x21\x23\x24\x26-\x7e]/gu;

const percentEncode = (char: string): string => {
  let out = '';
  for (const byte of Buffer.from(char)) out += `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`;
  return out;
};

/** A header value for an attribute value. */
export function encodeHeaderValue(value: string): string {
  return NEEDS_ENCODING.test(value) ? value.replace(NEEDS_ENCODING_ALL, percentEncode) : value;
}

/** An attribute value from its header value: a quoted string unquoted, then one round of percent-decoding. */
function decodeHeaderValue(value: string, name: string): string {
  let text = value;
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1).replace(/\\(.)/g, '$1');
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text); // rejects what is not UTF-8, overlong encodings included
  } catch {
    throw new DecodeError('malformed', `header ${name}: invalid percent-encoding`);
  }
}

const isStructuredContentType = (value: string) => value.toLowerCase().startsWith('application/cloudevents');

/**
 * The attributes of a binary-mode message, or undefined for a structured one: a message is binary
 * when it carries `ce-` headers and no `Content-Type: application/cloudevents…`. `datacontenttype`
 * is `ce-datacontenttype` (the NATS binding) or `Content-Type` (as the HTTP binding and the
 * CloudEvents SDKs write it).
 */
export function binaryAttributes(headers: MessageHeaders): Record<string, unknown> | undefined {
  let attributes: Record<string, unknown> | undefined;
  let contentType: string | undefined;
  for (const [name, values] of headers) {
    if (values.length === 0) continue;
    if (name.length > 3 && name.charCodeAt(2) === 0x2d && name.slice(0, 3).toLowerCase() === ATTRIBUTE_PREFIX) {
      const attribute = name.slice(3).toLowerCase();
      if (attribute === '__proto__') continue;
      attributes ??= Object.create(null) as Record<string, unknown>;
      attributes[attribute] = decodeHeaderValue(values[0], name);
    } else if (name.length === 12 && name.toLowerCase() === 'content-type') {
      if (isStructuredContentType(values[0])) return undefined;
      contentType = values[0];
    }
  }
  if (attributes && attributes.datacontenttype === undefined && contentType !== undefined) attributes.datacontenttype = contentType;
  return attributes;
}

/** The value of one `ce-` header as this module writes it (lower-case name, exact). */
export function headerValue(headers: MessageHeaders, name: string): string | undefined {
  for (const [key, values] of headers) if (key === name) return values[0];
  return undefined;
}
