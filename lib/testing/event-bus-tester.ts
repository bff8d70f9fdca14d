import { Injectable } from '@nestjs/common';
import { DomainEventBus } from '../domain-event-bus.js';
import type { EventContext } from '../event-context.js';
import { eventRegistry, type Type } from '../registry/event-registry.js';

/** An event this application published, with its context (id, correlation, causation, subject). */
export interface PublishedEvent<T extends object = object> {
  readonly event: T;
  readonly context: EventContext;
}

/** One handler run that ended: the handler (`Class.method`), the event, and the error if it failed. */
export interface HandledEvent<T extends object = object> extends PublishedEvent<T> {
  readonly handler: string;
  readonly error: Error | undefined;
}

/** An event class, or a handler by its name (`'BillingSaga.onOrderPlaced'`, `'CQRS EventBus'`). */
export type HandledTarget<T> = Type<T> | string;

interface Waiter<R> {
  readonly matches: (record: R) => boolean;
  readonly resolve: (record: R) => void;
}

const DEFAULT_TIMEOUT_MS = 2_000;

/**
 * Test helpers for an application's event flows: what was published, awaitable; which handlers
 * ran, awaitable. Provided by EventBusTestingModule; add it as a provider to a test module that
 * imports your own EventBusModule configuration otherwise.
 */
@Injectable()
export class EventBusTester {
  private readonly publishedEvents: PublishedEvent[] = [];
  private readonly handledEvents: HandledEvent[] = [];
  private readonly publishWaiters = new Set<Waiter<PublishedEvent>>();
  private readonly handleWaiters = new Set<Waiter<HandledEvent>>();

  constructor(bus: DomainEventBus) {
    bus.observe({
      published: (event, context) => this.record(this.publishedEvents, this.publishWaiters, { event, context }),
      handled: (handler, event, context, error) => this.record(this.handledEvents, this.handleWaiters, { handler, event, context, error }),
    });
  }

  /** Every event published since the start (or the last reset()), in order. */
  get events(): readonly PublishedEvent[] {
    return this.publishedEvents;
  }

  /** Every handler run that ended since the start (or the last reset()), in order. */
  get runs(): readonly HandledEvent[] {
    return this.handledEvents;
  }

  /**
   * The first event of the class (matching the predicate) published since the last reset(), or the
   * next one; rejects after `timeoutMs` saying what was published instead.
   */
  published<T extends object>(type: Type<T>, predicate: (event: T, context: EventContext) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    const matches = ({ event, context }: PublishedEvent) => event instanceof type && predicate(event as T, context);
    const found = this.wait(this.publishedEvents, this.publishWaiters, matches, timeoutMs, () =>
      `no ${type.name}${predicate.length ? ' matching the predicate' : ''} was published within ${timeoutMs} ms; published: ${this.summary(this.publishedEvents)}`,
    );
    return found.then((record) => record.event as T);
  }

  /**
   * The first handler run (of an event of the class, or of the named handler) matching the
   * predicate, since the last reset(), or the next one; it resolves for failed runs too (see
   * `error`). Rejects after `timeoutMs` saying which runs there were.
   */
  handled<T extends object>(
    target: HandledTarget<T>,
    predicate: (run: HandledEvent<T>) => boolean = () => true,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<HandledEvent<T>> {
    const type = typeof target === 'string' ? undefined : eventRegistry.eventByType(target)?.name;
    if (typeof target !== 'string' && !type) return Promise.reject(new Error(`${target.name} is not a @DomainEvent class`));
    const matches = (run: HandledEvent) => (type ? run.context.type === type : run.handler === target) && predicate(run as HandledEvent<T>);
    const what = typeof target === 'string' ? `run of ${target}` : `handler run for ${type}`;
    const found = this.wait(this.handledEvents, this.handleWaiters, matches, timeoutMs, () =>
      `no ${what}${predicate.length ? ' matching the predicate' : ''} ended within ${timeoutMs} ms; runs: ${
        this.handledEvents.map((r) => `${r.handler}(${r.context.type})`).join(', ') || 'none'
      }`,
    );
    return found as Promise<HandledEvent<T>>;
  }

  /** Forgets what was published and handled (waiters keep waiting for what comes next). */
  reset(): void {
    this.publishedEvents.length = 0;
    this.handledEvents.length = 0;
  }

  private record<R>(records: R[], waiters: Set<Waiter<R>>, record: R): void {
    records.push(record);
    for (const waiter of waiters) if (waiter.matches(record)) waiter.resolve(record);
  }

  private wait<R>(records: readonly R[], waiters: Set<Waiter<R>>, matches: (record: R) => boolean, timeoutMs: number, why: () => string): Promise<R> {
    const found = records.find(matches);
    if (found) return Promise.resolve(found);
    return new Promise<R>((resolve, reject) => {
      const waiter: Waiter<R> = {
        matches,
        resolve: (record) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(record);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(why()));
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  private summary(records: readonly PublishedEvent[]): string {
    const counts = new Map<string, number>();
    for (const { context } of records) counts.set(context.type, (counts.get(context.type) ?? 0) + 1);
    return [...counts].map(([type, n]) => `${type} ×${n}`).join(', ') || 'nothing';
  }
}
