import type { EventContext } from '../event-context.js';

/** Sees what a bus publishes and every handler run it makes: for test helpers and tooling, off the hot path when absent. */
export interface BusObserver {
  /** An event handed to the transport. */
  published?(event: object, context: EventContext): void;
  /** A handler run that ended, with its error when it failed. */
  handled?(handler: string, event: object, context: EventContext, error: Error | undefined): void;
}
