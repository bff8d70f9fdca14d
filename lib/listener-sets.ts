import { deliveryOptions, sameDelivery, type DeliveryOptions, type StartPosition } from './delivery/delivery-options.js';
import type { EventContext } from './event-context.js';
import type { EventRegistry } from './registry/event-registry.js';
import { EventRoute, type EventPattern } from './event-route.js';
import { quoted } from './printable.js';
import { subjectLengthProblem } from './routing/subject-length.js';
import { nameProblem } from './routing/subject-token.js';
import type { TransportSubscription } from './transport/event-transport.js';

export type DomainEventHandler<T = any> = (event: T, context: EventContext) => unknown;

export interface SubscribeOptions {
  /** Only events published with this routing key. */
  key?: string;
  /** Queue group: each event runs on exactly one instance of the group. */
  group?: string;
  /** Durable transports: deliveries before the event goes to the dead letters (default: the module's retry.attempts). */
  attempts?: number;
  /** Durable transports: where a new subscription starts: new events only (default), the whole stream, or a time. */
  start?: StartPosition;
  /** Durable transports: handle the events one at a time, in stream order, so each routing key in order. */
  ordered?: boolean;
  /** Durable transports: how long one attempt may run before it counts as failed (default: the module's retry.handlerTimeoutMs). */
  timeoutMs?: number;
}

export interface EventSubscription {
  unsubscribe(): void;
}

export interface Listener {
  readonly handler: DomainEventHandler;
  readonly description: string;
  /** Runs for events from other instances only (the CQRS bridge: local events reach CQRS directly). */
  readonly remoteOnly?: boolean;
}

/** Listeners that share one route and queue group, and so share transport subscriptions. */
export interface ListenerSet {
  readonly route: EventRoute;
  readonly queue: string | undefined;
  readonly delivery: DeliveryOptions;
  /** Event id -> listeners that already succeeded, while the event awaits redelivery after a failure. */
  readonly succeeded: Map<string, Set<Listener>>;
  listeners: readonly Listener[];
  subscriptions: TransportSubscription[];
}

/** Where sets come and go: the bus subscribes a set's route on the transport and unsubscribes it. */
export interface ListenerSetHooks {
  added(set: ListenerSet): void;
  removed(set: ListenerSet): void;
}

/**
 * The listeners of one bus, grouped into sets by route and queue group: one transport
 * subscription per set, however many listeners share it.
 */
export class ListenerSets {
  private readonly sets = new Map<string, ListenerSet>();
  /**
   * Broadcast sets that may match a type, for events published here; rebuilt on change. Keyed by
   * the types this instance publishes: bounded by the application's registered classes.
   */
  private readonly broadcastByType = new Map<string, ListenerSet[]>();

  constructor(
    private readonly registry: EventRegistry,
    private readonly subjectPrefix: string,
    private readonly defaultAttempts: number,
    private readonly hooks: ListenerSetHooks,
  ) {}

  add(pattern: EventPattern, listener: Listener, options: SubscribeOptions): EventSubscription {
    if (options.group !== undefined) {
      const problem = nameProblem(options.group);
      if (problem) throw new Error(`${listener.description}: group ${quoted(options.group)} ${problem}`);
    }
    const route = EventRoute.of(pattern, options.key, this.registry, listener.description);
    for (const relative of route.subjects) {
      const subject = `${this.subjectPrefix}.${relative}`;
      const problem = subjectLengthProblem(subject);
      if (problem) throw new Error(`${listener.description}: the subject ${quoted(subject)} ${problem}; use a shorter key or pattern`);
    }
    const delivery = deliveryOptions(options, this.defaultAttempts, listener.description);
    const setKey = `${options.group ?? ''}|${route.id}`;
    let set = this.sets.get(setKey);
    if (!set) {
      set = { route, queue: options.group, delivery, succeeded: new Map(), listeners: [], subscriptions: [] };
      this.sets.set(setKey, set);
      this.hooks.added(set);
    } else if (!sameDelivery(set.delivery, delivery)) {
      throw new Error(
        `${listener.description}: ${set.listeners[0]?.description} handles ${route.id}${options.group ? ` in group ${options.group}` : ''} ` +
          'with other attempts/start/ordered/timeoutMs options; handlers that share a route and group must share these options',
      );
    }
    set.listeners = [...set.listeners, listener];
    this.broadcastByType.clear();
    let removed = false;
    const owner = set;
    return {
      unsubscribe: () => {
        if (removed) return;
        removed = true;
        owner.listeners = owner.listeners.filter((l) => l !== listener);
        if (owner.listeners.length === 0) {
          this.sets.delete(setKey);
          this.hooks.removed(owner);
        }
        this.broadcastByType.clear();
      },
    };
  }

  values(): IterableIterator<ListenerSet> {
    return this.sets.values();
  }

  /** Broadcast (group-less) sets that may match events of a type. */
  broadcastFor(type: string): readonly ListenerSet[] {
    let sets = this.broadcastByType.get(type);
    if (!sets) {
      sets = [...this.sets.values()].filter((s) => s.queue === undefined && s.route.matchesType(type));
      this.broadcastByType.set(type, sets);
    }
    return sets;
  }
}
