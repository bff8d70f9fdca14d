import { MAX_ID_LENGTH, MAX_SOURCE_LENGTH } from './wire-limits.js';

/** The only CloudEvents version this module reads and writes. */
export const SPEC_VERSION = '1.0';
export const JSON_CONTENT_TYPE = 'application/json';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** RFC 3986 characters of a URI-reference: unreserved, reserved, and percent-encoded octets. */
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
/** RFC 3339 date-time (as CloudEvents `time` must be). */
const TIMESTAMP = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d{1,9})?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** Returns why `id` is not an event id this module accepts, or undefined. */
export function idProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return id === undefined ? 'is missing' : `must be a string, got ${typeof id}`;
  if (id === '') return 'is empty';
  if (id.length > MAX_ID_LENGTH) return `is ${id.length} characters long; at most ${MAX_ID_LENGTH} are allowed`;
  if (CONTROL.test(id)) return 'contains control characters';
  return undefined;
}

/** Returns why `source` is not a CloudEvents source (a non-empty URI-reference), or undefined. */
export function sourceProblem(source: unknown): string | undefined {
  if (typeof source !== 'string') return source === undefined ? 'is missing' : `must be a string, got ${typeof source}`;
  if (source.length > MAX_SOURCE_LENGTH) return `is ${source.length} characters long; at most ${MAX_SOURCE_LENGTH} are allowed`;
  const colon = source.indexOf(':');
  const firstSegmentEnd = source.search(/[/?#]/);
  // Before the first "/", "?" or "#", a ":" ends a scheme; a relative reference has none there.
  const badScheme = colon !== -1 && (firstSegmentEnd === -1 || colon < firstSegmentEnd) && !SCHEME.test(source.slice(0, colon));
  if (!URI_REFERENCE.test(source) || badScheme) {
    return 'must be a URI-reference (RFC 3986), such as /billing or urn:billing:eu (no spaces; percent-encode other characters)';
  }
  return undefined;
}

/** True for an RFC 3339 timestamp. */
export function isTimestamp(time: unknown): boolean {
  return typeof time === 'string' && time.length <= 64 && TIMESTAMP.test(time);
}

/** True for a JSON media type: application/json, text/json, or any `+json` type, with parameters or without. */
export function isJsonContentType(contentType: unknown): boolean {
  if (contentType === JSON_CONTENT_TYPE) return true;
  if (typeof contentType !== 'string') return false;
  const semicolon = contentType.indexOf(';');
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === JSON_CONTENT_TYPE || type === 'text/json' || (type.endsWith('+json') && type.includes('/'));
}
