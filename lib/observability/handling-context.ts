import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventContext } from '../event-context.js';

/**
 * The event being handled in the current async context. A publish made while handling it (in the
 * handler, or in anything it awaits or starts: a CQRS saga, a command handler, AggregateRoot.commit())
 * is caused by it and continues its correlation.
 */
const handling = new AsyncLocalStorage<EventContext>();

/** The context of the event whose handler is running here; undefined outside handlers. */
export function currentEventContext(): EventContext | undefined {
  return handling.getStore();
}

/** Calls `fn(a, b)` as the handling of the event of `context` (fixed arity: no closure or array per call of our own). */
export function runHandling<A, B, R>(context: EventContext, fn: (a: A, b: B) => R, a: A, b: B): R {
  return handling.run(context, fn, a, b);
}
