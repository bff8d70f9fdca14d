import type { Logger } from '@nestjs/common';
import type { EventBusStats } from './event-bus-stats.js';
import type { EventContext } from './event-context.js';
import type { Listener, ListenerSet } from './listener-sets.js';
import { printable } from './printable.js';

/** Events awaiting redelivery whose partial success a set remembers; past this the oldest are forgotten. */
const MAX_REMEMBERED_RETRIES = 10_000;

/**
 * Calls listeners: one failing never stops the others; failures are logged and counted. For
 * redelivering transports it remembers which listeners of a set succeeded, so that a redelivery
 * runs only those that failed.
 */
export class HandlerInvoker {
  constructor(
    private readonly stats: EventBusStats,
    private readonly logger: Logger,
  ) {}

  /**
   * Returns undefined when every listener returned synchronously without error, else a promise
   * that rejects with the first failure.
   */
  invoke(listeners: readonly Listener[], event: object, context: EventContext, succeeded?: Set<Listener>): Promise<unknown> | undefined {
    let pending: Promise<unknown>[] | undefined;
    for (const listener of listeners) {
      if ((listener.remoteOnly && context.local) || succeeded?.has(listener)) continue;
      try {
        const result = listener.handler(event, context) as Promise<unknown> | undefined;
        if (result && typeof result.then === 'function') {
          (pending ??= []).push(
            result.then(
              () => succeeded?.add(listener),
              (error) => this.failed(listener, context, error),
            ),
          );
        } else succeeded?.add(listener);
      } catch (error) {
        (pending ??= []).push(this.failed(listener, context, error));
      }
    }
    if (!pending) return undefined;
    return pending.length === 1 ? pending[0] : Promise.all(pending);
  }

  /** A redelivery after a failure runs only the listeners that have not succeeded on this instance yet. */
  invokeRedeliverable(set: ListenerSet, event: object, context: EventContext): Promise<unknown> | undefined {
    const succeeded = set.succeeded.get(context.id) ?? new Set<Listener>();
    set.succeeded.delete(context.id);
    const result = this.invoke(set.listeners, event, context, succeeded);
    if (!result) return undefined;
    return result.catch((error) => {
      if (context.attempt < set.delivery.attempts) {
        if (set.succeeded.size >= MAX_REMEMBERED_RETRIES) set.succeeded.delete(set.succeeded.keys().next().value!);
        set.succeeded.set(context.id, succeeded);
      }
      throw error;
    });
  }

  /** Logs and counts a failure, and returns it as a rejection for durable transports to act on. */
  private failed(listener: Listener, context: EventContext, error: unknown): Promise<never> {
    this.stats.handlerErrors++;
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error(`${listener.description} failed on ${context.type} ${printable(context.id)} (attempt ${context.attempt}): ${err.message}`, err.stack);
    return Promise.reject(err);
  }
}
