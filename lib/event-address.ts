import { idProblem } from './codec/cloudevents-attributes.js';
import { MAX_ID_LENGTH } from './codec/wire-limits.js';
import { nextEventId } from './event-id.js';
import { quoted } from './printable.js';
import type { DomainEventRegistration } from './registry/event-registry.js';
import { subjectLengthProblem } from './routing/subject-length.js';
import { tokenProblem } from './routing/subject-token.js';

// Where a published event goes and under which id, checked as receivers will check them: the bus and the
// outbox writer address events alike, and a publish that could not arrive is refused saying what to change.

/** The routing key: the one given, else the class's key function; throws for one that is not a subject token. */
export function routingKeyOf(event: object, registration: DomainEventRegistration, given: string | undefined): string | undefined {
  const key = given ?? registration.key?.(event);
  if (key !== undefined) {
    const problem = tokenProblem(key);
    if (problem) throw new Error(`${registration.name}: routing key ${quoted(key)} ${problem}`);
  }
  return key;
}

/** `<base>[.<key>]`; throws when the key makes it longer than a NATS subject may be. */
export function subjectOf(base: string, key: string | undefined, registration: DomainEventRegistration): string {
  if (key === undefined) return base;
  const subject = `${base}.${key}`;
  const tooLong = subjectLengthProblem(subject);
  if (tooLong) throw new Error(`${registration.name}: the subject ${quoted(subject)} ${tooLong}; use a shorter routing key`);
  return subject;
}

/** The id given (checked as a CloudEvents id), or a new one. */
export function eventIdOf(given: string | undefined, registration: DomainEventRegistration): string {
  if (given === undefined) return nextEventId();
  const problem = idProblem(given);
  if (problem) {
    throw new Error(
      `${registration.name}: publish option id ${quoted(given)} ${problem}: pass a non-empty id of at most ${MAX_ID_LENGTH} characters without control characters, or none for a generated one`,
    );
  }
  return given;
}
