import type { Logger } from '@nestjs/common';
import type { EventBusStats } from './event-bus-stats.js';
import type { EventContext } from './event-context.js';
import type { Listener, ListenerSet } from './listener-sets.js';
import { printable } from './printable.js';
import type { BusObserver } from './observability/bus-observer.js';
import type { BusStatistics, HandlerStats } from './observability/bus-statistics.js';
import type { ProcessSpan } from './observability/event-tracing.js';
import { currentEventContext, runHandling } from './observability/handling-context.js';
import { Telemetry } from './observability/telemetry.js';

/** Events awaiting redelivery whose partial success a set remembers; past this the oldest are forgotten. */
const MAX_REMEMBERED_RETRIES = 10_000;

/**
 * Calls listeners: one failing never stops the others; failures are logged and counted. Each runs
 * as the handling of its event (a publish it makes is caused by that event) and, when tracing, in
 * a span of its own. For redelivering transports it remembers which listeners of a set succeeded,
 * so that a redelivery runs only those that failed.
 */
export class HandlerInvoker {
  /** Told of every handler run when set (test helpers). */
  observer: BusObserver | undefined;
  /** Set by the bus once loaded. */
  telemetry = Telemetry.off;

  constructor(
    private readonly stats: EventBusStats,
    private readonly statistics: BusStatistics,
    private readonly logger: Logger,
    /** Whether listeners run as the handling of their event (see EventBusModuleOptions.causation). */
    private readonly causation: boolean,
  ) {}

  /**
   * Returns undefined when every listener returned synchronously without error, else a promise
   * that rejects with the first failure. `delivery` is the process span the handler spans belong to.
   */
  invoke(listeners: readonly Listener[], event: object, context: EventContext, succeeded?: Set<Listener>, delivery?: ProcessSpan): Promise<unknown> | undefined {
    // One async context for the listeners of a delivery (the bus may have entered it already, for local CQRS handlers).
    if (!this.causation || currentEventContext() === context) return this.invokeAll(listeners, event, context, succeeded, delivery);
    return runHandling(context, () => this.invokeAll(listeners, event, context, succeeded, delivery), undefined, undefined);
  }

  private invokeAll(listeners: readonly Listener[], event: object, context: EventContext, succeeded: Set<Listener> | undefined, delivery: ProcessSpan | undefined): Promise<unknown> | undefined {
    let pending: Promise<unknown>[] | undefined;
    for (const listener of listeners) {
      if ((listener.remoteOnly && context.local) || succeeded?.has(listener)) continue;
      const result = this.call(listener, event, context, succeeded, delivery);
      if (result) (pending ??= []).push(result);
    }
    if (!pending) return undefined;
    return pending.length === 1 ? pending[0] : Promise.all(pending);
  }

  /** A redelivery after a failure runs only the listeners that have not succeeded on this instance yet. */
  invokeRedeliverable(set: ListenerSet, event: object, context: EventContext, delivery?: ProcessSpan): Promise<unknown> | undefined {
    const succeeded = set.succeeded.get(context.id) ?? new Set<Listener>();
    set.succeeded.delete(context.id);
    const result = this.invoke(set.listeners, event, context, succeeded, delivery);
    if (!result) return undefined;
    return result.catch((error) => {
      if (context.attempt < set.delivery.attempts) {
        if (set.succeeded.size >= MAX_REMEMBERED_RETRIES) set.succeeded.delete(set.succeeded.keys().next().value!);
        set.succeeded.set(context.id, succeeded);
      }
      throw error;
    });
  }

  /** The one place a handler is called (in its event's handling context): timed when sampled or measured, traced when tracing. */
  private call(listener: Listener, event: object, context: EventContext, succeeded: Set<Listener> | undefined, delivery: ProcessSpan | undefined): Promise<unknown> | undefined {
    const { tracing, metrics } = this.telemetry;
    const stats = this.statistics.of(listener);
    const started = stats.started() || metrics ? performance.now() : 0;
    const span = delivery && tracing?.startHandle(delivery, listener.description, this.statistics.type(context.type).destination);
    try {
      const result = (span ? tracing!.within(span, listener.handler, event, context) : listener.handler(event, context)) as Promise<unknown> | undefined;
      if (result && typeof result.then === 'function') {
        return result.then(
          () => {
            if (started !== 0 || span || this.observer) this.ended(listener, event, stats, context, started, span);
            succeeded?.add(listener);
          },
          (error) => this.failed(listener, event, stats, context, started, span, error),
        );
      }
      if (started !== 0 || span || this.observer) this.ended(listener, event, stats, context, started, span);
      succeeded?.add(listener);
      return undefined;
    } catch (error) {
      return this.failed(listener, event, stats, context, started, span, error);
    }
  }

  /** Records a run's duration (when timed), ends its span (when traced) and tells the observer. */
  private ended(listener: Listener, event: object, stats: HandlerStats, context: EventContext, started: number, span: ProcessSpan | undefined, error?: Error): void {
    if (started !== 0) {
      const ms = performance.now() - started;
      stats.took(ms);
      this.telemetry.metrics?.handled(this.statistics.type(context.type).destination, listener.description, ms / 1000, error);
    }
    if (span) this.telemetry.tracing!.end(span.span, error);
    this.observer?.handled?.(listener.description, event, context, error);
  }

  /** Logs and counts a failure, and returns it as a rejection for durable transports to act on. */
  private failed(
    listener: Listener,
    event: object,
    stats: HandlerStats,
    context: EventContext,
    started: number,
    span: ProcessSpan | undefined,
    error: unknown,
  ): Promise<never> {
    const err = error instanceof Error ? error : new Error(String(error));
    this.stats.handlerErrors++;
    stats.failed(err);
    this.ended(listener, event, stats, context, started, span, err);
    this.logger.error(`${listener.description} failed on ${context.type} ${printable(context.id)} (attempt ${context.attempt}): ${err.message}`, err.stack);
    return Promise.reject(err);
  }
}
