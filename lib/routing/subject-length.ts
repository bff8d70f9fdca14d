/** nats-server's default `max_control_line`: the longest protocol line (PUB, SUB, …) it accepts from a client. */
export const NATS_MAX_CONTROL_LINE = 4096;

/**
 * The longest subject (in UTF-8 bytes) this module publishes or subscribes to: the control line
 * less room for what shares it — the verb, a reply subject (JetStream's ack and API subjects carry
 * the stream and consumer names), a queue group, the sid and the size digits. A longer subject is
 * refused by the server, which then closes the connection and drops what was buffered.
 */
export const MAX_SUBJECT_LENGTH = NATS_MAX_CONTROL_LINE - 512;

/** Returns why `subject` is too long for NATS, or undefined when it fits. */
export function subjectLengthProblem(subject: string): string | undefined {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: most subjects need no count.
  if (subject.length * 3 <= MAX_SUBJECT_LENGTH) return undefined;
  const bytes = Buffer.byteLength(subject);
  if (bytes <= MAX_SUBJECT_LENGTH) return undefined;
  return `is ${bytes} bytes; a NATS subject may be at most ${MAX_SUBJECT_LENGTH} bytes here (the server's control line is ${NATS_MAX_CONTROL_LINE})`;
}
