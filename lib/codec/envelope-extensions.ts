/**
 * CloudEvents extension attributes for correlation and distributed tracing, beside the event's own
 * (`origin`, `datatypes`). Absent attributes cost nothing on the wire: a root event (its correlation
 * is its own id) and an untraced one carry none.
 */
export interface EnvelopeExtensions {
  /** The event this one belongs to the flow of; written only when it is not the event's own id. */
  readonly correlationid?: string;
  /** The id of the event whose handling published this one. */
  readonly causationid?: string;
  /** W3C trace context of the producer (CloudEvents Distributed Tracing extension). */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** Longest correlation or causation id accepted from the wire; longer ones are ignored. */
const MAX_ID_LENGTH = 256;
/** W3C Trace Context: `tracestate` is at most 32 members of at most 256 characters; past 512 we ignore it. */
const MAX_TRACESTATE_LENGTH = 512;
/** `version-traceid-parentid-flags`, lowercase hex; version ff is invalid. */
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The attributes as JSON members, each preceded by a comma: `,"correlationid":"…"…`; empty when there are none. */
export function encodeExtensions(extensions: EnvelopeExtensions): string {
  let json = '';
  if (extensions.correlationid !== undefined) json += `,"correlationid":${JSON.stringify(extensions.correlationid)}`;
  if (extensions.causationid !== undefined) json += `,"causationid":${JSON.stringify(extensions.causationid)}`;
  if (extensions.traceparent !== undefined) json += `,"traceparent":${JSON.stringify(extensions.traceparent)}`;
  if (extensions.tracestate !== undefined) json += `,"tracestate":${JSON.stringify(extensions.tracestate)}`;
  return json;
}

export const NO_EXTENSIONS: EnvelopeExtensions = Object.freeze({});

const boundedId = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' && value.length <= MAX_ID_LENGTH ? value : undefined;

/**
 * The attributes of a parsed envelope, each checked: a value of the wrong type or size, or a
 * malformed `traceparent`, is ignored (as W3C Trace Context asks), never a reason to drop the event.
 */
export function decodeExtensions(envelope: Record<string, unknown>): EnvelopeExtensions {
  const { correlationid, causationid, traceparent, tracestate } = envelope;
  if (correlationid === undefined && causationid === undefined && traceparent === undefined) return NO_EXTENSIONS;
  const parent = typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? traceparent : undefined;
  return {
    correlationid: boundedId(correlationid),
    causationid: boundedId(causationid),
    traceparent: parent,
    tracestate: parent && typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE_LENGTH ? tracestate : undefined,
  };
}
