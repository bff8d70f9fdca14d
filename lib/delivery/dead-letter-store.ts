import { printable } from '../printable.js';

/** A dead-lettered event: what failed, where, and why. */
export interface DeadLetter {
  /** Where the transport keeps the letter (a stream sequence, an entry id): opaque, for paging and replay. */
  readonly ref: string;
  /** The event id (CloudEvents id). */
  readonly id: string;
  readonly type: string;
  /** The group, or `instance-<instance id>` for a group-less handler. */
  readonly group: string;
  /** The subject the event was published to. */
  readonly subject: string;
  readonly attempts: number;
  readonly error: string;
  readonly time: Date;
}

export interface DeadLetterPage {
  readonly letters: readonly DeadLetter[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next: string | undefined;
}

export interface DeadLetterQuery {
  /** Letters after this ref (the `next` of the previous page); from the oldest when absent. */
  readonly after?: string;
  /** At most this many letters. */
  readonly limit?: number;
}

/**
 * The dead letters of a durable transport: every transport whose `redelivers` is true keeps them
 * (with the reason, the attempts and the group that gave up) and can send them back to that group.
 */
export interface DeadLetterStore {
  list(query?: DeadLetterQuery): Promise<DeadLetterPage>;
  /** Sends the letters back to the group (or instance) that gave up on them and removes them. */
  replay(letters: readonly DeadLetter[]): Promise<void>;
  /** How many letters are kept. */
  count(): Promise<number>;
}

/** A wire or error text made safe for a dead letter's header or field (and the log lines that show it): printable, cut. */
export const deadLetterText = (text: string): string => printable(text, 1_024);

/** The CloudEvents type of a body, for the dead-letter listing; empty when the body is not one. */
export function eventTypeOf(data: Uint8Array): string {
  try {
    const type = JSON.parse(new TextDecoder().decode(data))?.type;
    return typeof type === 'string' ? deadLetterText(type) : '';
  } catch {
    return '';
  }
}
