import { DecodeError } from './codec-errors.js';
import { printable } from '../printable.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text of a message; DecodeError for invalid UTF-8. */
export function utf8(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new DecodeError('malformed', `${what} is not valid UTF-8`);
  }
}

/**
 * Parses JSON from the wire. JSON.parse makes `"__proto__"` an own key, which `Object.assign` or a
 * spread would turn into a prototype: such keys are dropped at every depth. Only text that could
 * hold one (the word, or a `\u` escape that could spell it) is walked, so events pay nothing.
 */
export function parseWireJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DecodeError('malformed', `${what} is malformed JSON: ${printable((error as Error).message)}`);
  }
  if (typeof value === 'object' && value !== null && (text.includes('__proto__') || text.includes('\\u'))) dropProtoKeys(value);
  return value;
}

/** Iterative, as JSON may nest deeper than the stack. */
function dropProtoKeys(root: object): void {
  const pending: object[] = [root];
  while (pending.length > 0) {
    const node = pending.pop() as Record<string, unknown>;
    if (Object.hasOwn(node, '__proto__')) delete node['__proto__'];
    for (const key in node) {
      const value = node[key];
      if (typeof value === 'object' && value !== null) pending.push(value);
    }
  }
}

/** A JSON object (not null, not an array). */
export const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Copies the own data of a parsed JSON object onto a new instance of `proto`, never touching a prototype. */
export function instantiate(proto: object, data: Record<string, unknown>): Record<string, unknown> {
  const instance = Object.create(proto) as Record<string, unknown>;
  for (const key in data) {
    // Spelled out rather than a Set lookup: this runs for every field of every event.
    if (key !== '__proto__' && key !== 'constructor' && key !== 'prototype') instance[key] = data[key];
  }
  return instance;
}
