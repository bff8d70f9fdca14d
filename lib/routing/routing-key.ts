import type { DomainEventRegistration } from '../registry/event-registry.js';
import { tokenProblem } from './subject-token.js';

/** The routing key of an event: the one given, else its class's key function; throws for one that is not a subject token. */
export function routingKeyOf(event: object, registration: DomainEventRegistration, given: string | undefined): string | undefined {
  const key = given ?? registration.key?.(event);
  if (key !== undefined) {
    const problem = tokenProblem(key);
    if (problem) throw new Error(`${registration.name}: routing key ${JSON.stringify(key)} ${problem}`);
  }
  return key;
}
