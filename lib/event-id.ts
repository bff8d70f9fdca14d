import { randomBytes } from 'node:crypto';

// 72 random bits per process, then a counter: unique across instances, and cheaper per event than a UUID.
const prefix = randomBytes(9).toString('base64url');
let counter = 0;

/** A new CloudEvents id, unique with the source whatever it is. */
export function nextEventId(): string {
  return prefix + (counter++).toString(36);
}
