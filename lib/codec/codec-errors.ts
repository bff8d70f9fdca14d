import { quoted } from '../printable.js';

/** Why a message could not become an event, as a small code (for metrics) beside the message. */
export type DecodeFailure =
  /** Over maxMessageBytes. */
  | 'too-large'
  /** Not JSON, not UTF-8, not an object, bad base64 or header encoding. */
  | 'malformed'
  /** A CloudEvents attribute missing or invalid (specversion, id, source, time, datacontenttype). */
  | 'attribute'
  | 'unknown-type'
  /** The type does not match the subject it came on. */
  | 'subject'
  /** `data` missing, not an object, or not JSON. */
  | 'data'
  /** `datatypes` invalid, too long, or not fitting the data. */
  | 'datatypes';

/** A message that cannot become an event: malformed, foreign to the registry, or not fitting its class. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';

  constructor(
    readonly reason: DecodeFailure,
    message: string,
  ) {
    super(message);
  }
}

/** An event that cannot be put on the wire (for example a nested instance of an unregistered class). */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

/** How decode errors name the message they are about: its type and id, printable. */
export const messageLabel = (type: unknown, id: unknown): string => `${quoted(type)} ${quoted(id)}`;
