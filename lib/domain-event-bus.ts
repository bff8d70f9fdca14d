import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DecodeError, EventCodec } from './codec/event-codec.js';
import { EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
import { emptyStats, type EventBusStats } from './event-bus-stats.js';
import { EventContext } from './event-context.js';
import { nextEventId } from './event-id.js';
import { HandlerInvoker } from './handler-invoker.js';
import { isoNow } from './iso-clock.js';
import { ListenerSets, type DomainEventHandler, type EventSubscription, type Listener, type ListenerSet, type SubscribeOptions } from './listener-sets.js';
import { eventRegistry, type DomainEventRegistration } from './registry/event-registry.js';
import type { EventPattern } from './event-route.js';
import { routingKeyOf } from './routing/routing-key.js';
import type { ResolvedEventBusOptions } from './resolve-options.js';
import type { EventTransport, LocalEnvelope, TransportPayload, TransportStatus } from './transport/event-transport.js';

export interface PublishOptions {
  /** Routing key appended to the subject; overrides the key function of `@DomainEvent`. */
  key?: string;
  /** Event id chosen by the caller (a generated one otherwise). */
  id?: string;
}

/** The transactional outbox's backlog, as last measured by this instance's relay. */
export interface OutboxStatus {
  /** Committed events not yet sent. */
  readonly unsent: number;
  /** Age of the oldest of them in ms (0 when none). */
  readonly oldestUnsentMs: number;
  /** Events this instance's relay has sent. */
  readonly relayed: number;
  /** Batches that failed (transport or database), retried after a pause. */
  readonly relayErrors: number;
  readonly lastError?: string;
  /** When the backlog was measured (ISO-8601); absent before the first measurement. */
  readonly measuredAt?: string;
}

export interface EventBusStatus {
  readonly instanceId: string;
  /** True once handlers are subscribed and events flow (after application bootstrap). */
  readonly ready: boolean;
  readonly transport: TransportStatus;
  readonly stats: Readonly<EventBusStats>;
  /** Present when the transactional outbox is configured. */
  readonly outbox?: OutboxStatus;
}

/**
 * Where events published inside a database transaction go instead of the transport: the
 * transactional outbox (lib/outbox), which installs itself when configured.
 */
export interface TransactionalCapture {
  /**
   * Takes the event when a transaction is active (the promise settles once it is part of the
   * transaction), or rejects it when publishing outside one is forbidden; undefined lets it go out now.
   */
  capture(event: object, registration: DomainEventRegistration, options: PublishOptions | undefined): Promise<void> | undefined;
  status(): OutboxStatus;
}

/** Publishes an event to the local CQRS bus (the EventBus's own publisher), with CQRS's extra arguments. */
export type LocalCqrsDispatch = (event: object, args: readonly unknown[]) => void;

/** One published event on its way: also the envelope itself when it travels unencoded (one allocation per event). */
class Outgoing implements LocalEnvelope {
  /** The encoded event, or this envelope. */
  payload: Uint8Array | LocalEnvelope = this;

  constructor(
    readonly event: object,
    readonly registration: DomainEventRegistration,
    readonly subject: string,
    readonly key: string | undefined,
    readonly id: string,
    readonly time: string,
    readonly source: string,
    readonly origin: string,
    readonly cqrsArgs: readonly unknown[],
  ) {}

  get type(): string {
    return this.registration.name;
  }
}

const RESOLVED = Promise.resolve();
const NO_ARGS: readonly unknown[] = [];
const ignore = () => undefined;

export class UnregisteredEventError extends Error {
  override readonly name = 'UnregisteredEventError';
}

/**
 * The distributed bus: publishes registered events to every instance and runs the handlers
 * this instance has for what it publishes and receives. `EventBus.publish` of `@nestjs/cqrs`
 * goes through here too, so both APIs reach the same handlers.
 */
@Injectable()
export class DomainEventBus implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('EventBus');
  private readonly codec: EventCodec;
  /**
   * Whether this instance runs its handlers for what it publishes itself, skipping its own copy from
   * the transport. A redelivering (durable) transport delivers the publisher its own events instead,
   * so that its handlers are acked, retried and dead-lettered like everyone else's.
   */
  private readonly dispatchOwnEvents: boolean;
  private readonly prefixDot: string;
  private readonly sets: ListenerSets;
  private readonly invoker: HandlerInvoker;
  private readonly subjectBases = new Map<DomainEventRegistration, string>();
  private readonly warnedTypes = new Set<string>();
  private readonly stats = emptyStats();
  private held: Outgoing[] = [];
  /** Listener sets get transport subscriptions from activation on. */
  private subscribed = false;
  /** Publishes go out (rather than being held) once subscriptions are in place. */
  private active = false;
  private closing = false;
  private cqrsDispatch: LocalCqrsDispatch | undefined;
  private transactional: TransactionalCapture | undefined;

  constructor(
    @Inject(RESOLVED_EVENT_BUS_OPTIONS) private readonly options: ResolvedEventBusOptions,
    @Inject(EVENT_TRANSPORT) private readonly transport: EventTransport,
  ) {
    this.codec = new EventCodec(eventRegistry, options.instanceId, options.source);
    this.dispatchOwnEvents = !transport.redelivers;
    this.prefixDot = `${options.subjectPrefix}.`;
    this.invoker = new HandlerInvoker(this.stats, this.logger);
    this.sets = new ListenerSets(eventRegistry, options.retry.attempts, {
      added: (set) => {
        if (this.subscribed) this.subscribeSet(set);
      },
      removed: (set) => {
        for (const subscription of set.subscriptions) subscription.unsubscribe();
        set.subscriptions = [];
      },
    });
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  async onModuleInit(): Promise<void> {
    await this.transport.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.closing = true;
    this.active = false;
    await this.transport.close();
    this.logger.log(`closed (${this.stats.published} published, ${this.stats.received} received)`);
  }

  /**
   * Publishes an event to every instance. Settles once this instance's handlers ran and the
   * transport accepted it; rejects for a class without `@DomainEvent`, data that cannot be
   * encoded, or a closed transport. Events published before the application finished
   * bootstrapping are held and sent once it has (the promise then settles at once).
   */
  publish<T extends object>(event: T, options?: PublishOptions): Promise<void> {
    const registration = event && eventRegistry.eventOf(event);
    if (!registration) return Promise.reject(this.unregistered(event));
    try {
      return this.transactional?.capture(event, registration, options) ?? this.send(event, registration, options, NO_ARGS);
    } catch (error) {
      this.stats.publishErrors++;
      return Promise.reject(error);
    }
  }

  /**
   * Publishes events in order, all in flight at once; nothing is published when one of them is not
   * a registered event. Each gets its own id.
   */
  publishAll(events: readonly object[], options?: Omit<PublishOptions, 'id'>): Promise<void> {
    const unregistered = events.find((event) => !event || !eventRegistry.eventOf(event));
    if (unregistered !== undefined) return Promise.reject(this.unregistered(unregistered));
    return Promise.all(events.map((event) => this.publish(event, options))).then(ignore);
  }

  /**
   * Adds a handler at run time, for example for the rooms a WebSocket gateway's clients are in.
   * `pattern` is an event class, a wire name (every key, or only `options.key`) or a NATS
   * pattern relative to the subject prefix (`'>'`, `'*.room-42'`).
   */
  subscribe<T = any>(pattern: EventPattern, handler: DomainEventHandler<T>, options: SubscribeOptions = {}): EventSubscription {
    const description = `subscriber of ${typeof pattern === 'function' ? pattern.name : pattern}`;
    return this.sets.add(pattern, { handler, description }, options);
  }

  status(): EventBusStatus {
    const status = { instanceId: this.instanceId, ready: this.active, transport: this.transport.status(), stats: { ...this.stats } };
    return this.transactional ? { ...status, outbox: this.transactional.status() } : status;
  }

  /** @internal Used by the handler loader: one listener per `@OnDomainEvent` method. */
  addListener(pattern: EventPattern, listener: Listener, options: SubscribeOptions): EventSubscription {
    return this.sets.add(pattern, listener, options);
  }

  /** @internal Installed by the outbox: events published inside a database transaction are written to it, not sent. */
  setTransactionalCapture(capture: TransactionalCapture): void {
    this.transactional = capture;
  }

  /** @internal Installed by the CQRS bridge: how events reach the local CQRS EventBus. */
  setCqrsDispatch(dispatch: LocalCqrsDispatch): void {
    this.cqrsDispatch = dispatch;
  }

  /**
   * @internal Called by the CQRS publisher: distributes a registered event and dispatches it
   * locally. A failure to distribute is logged and counted; local handlers run regardless,
   * as they did before the module was added.
   */
  publishFromCqrs(event: object, args: readonly unknown[]): void {
    const registration = event && eventRegistry.eventOf(event);
    if (!registration) {
      const name = event?.constructor?.name ?? typeof event;
      if (!this.warnedTypes.has(name)) {
        this.warnedTypes.add(name);
        this.logger.warn(`${name} has no @DomainEvent(): it is published on this instance only`);
      }
      this.cqrsDispatch?.(event, args);
      return;
    }
    try {
      // Inside a transaction the event reaches the CQRS handlers after commit, from the transport, like everyone's.
      const captured = this.transactional?.capture(event, registration, undefined);
      if (captured) captured.catch((error) => this.publishFromCqrsFailed(registration, error));
      else this.send(event, registration, undefined, args).catch(ignore); // failures are logged and counted in send()
    } catch (error) {
      this.publishFromCqrsFailed(registration, error);
      this.cqrsDispatch?.(event, args);
    }
  }

  private publishFromCqrsFailed(registration: DomainEventRegistration, error: unknown): void {
    this.stats.publishErrors++;
    this.logger.error(`could not distribute ${registration.name}: ${(error as Error).message}`, (error as Error).stack);
  }

  /** @internal Called once handlers are registered: subscribes and sends what was held. */
  async activate(): Promise<void> {
    for (const set of this.sets.values()) this.subscribeSet(set);
    this.subscribed = true;
    // Subscribed first (a new durable consumer starts with new events), then what was held goes out.
    await this.transport.flush();
    this.active = true;
    const held = this.held;
    this.held = [];
    for (const publish of held) {
      try {
        this.transmit(publish).catch(ignore);
      } catch (error) {
        this.publishFailed(publish, error);
      }
    }
    const routes = [...this.sets.values()].map((s) => (s.queue ? `${s.route.id} (group ${s.queue})` : s.route.id));
    this.logger.log(`instance ${this.instanceId} ready on ${this.transport.status().transport}: ${routes.join(', ') || 'no subscriptions'}`);
  }

  /** Throws for what is wrong with the event itself; the promise rejects when the transport does not take it. */
  private send(event: object, registration: DomainEventRegistration, options: PublishOptions | undefined, cqrsArgs: readonly unknown[]): Promise<void> {
    const key = routingKeyOf(event, registration, options?.key);
    const id = options?.id ?? nextEventId();
    const time = isoNow();
    const base = this.subjectBase(registration);
    const subject = key === undefined ? base : `${base}.${key}`;
    const publish = new Outgoing(event, registration, subject, key, id, time, this.options.source, this.options.instanceId, cqrsArgs);
    if (this.transport.encodes) publish.payload = this.codec.encode(event, registration, id, time);
    if (!this.active) {
      if (this.closing) throw new Error(`cannot publish ${registration.name}: the event bus is shut down`);
      this.held.push(publish);
      return RESOLVED;
    }
    return this.transmit(publish);
  }

  /** Hands the event to the transport and runs the local handlers; settles when both are done. */
  private transmit(publish: Outgoing): Promise<void> {
    const stored = this.transport.publish(publish.subject, publish.payload, publish.id);
    this.stats.published++;
    const handled = this.dispatchLocally(publish);
    if (!stored) return handled ?? RESOLVED;
    const accepted = stored.then(ignore, (error) => {
      this.publishFailed(publish, error);
      throw error;
    });
    return handled ? Promise.all([accepted, handled]).then(ignore) : accepted;
  }

  private publishFailed(publish: Outgoing, error: unknown): void {
    this.stats.publishErrors++;
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error(`could not publish ${publish.registration.name} ${publish.id}: ${err.message}`, err.stack);
  }

  /** CQRS handlers always run here at once, as with CQRS alone; the bridge skips this instance's own events. */
  private dispatchLocally(publish: Outgoing): Promise<void> | undefined {
    this.cqrsDispatch?.(publish.event, publish.cqrsArgs);
    if (!this.dispatchOwnEvents) return undefined;
    const type = publish.registration.name;
    const sets = this.sets.broadcastFor(type);
    if (sets.length === 0) return undefined;
    const context = new EventContext(publish.id, type, this.options.source, this.options.instanceId, publish.subject, publish.key, true, publish.time);
    let pending: Promise<unknown>[] | undefined;
    for (const set of sets) {
      if (set.route.key !== undefined || set.route.type === undefined) {
        if (!set.route.matches(type, publish.key)) continue;
      }
      // A failing handler is logged and counted; it does not fail the publish.
      const result = this.invoker.invoke(set.listeners, publish.event, context);
      if (result) (pending ??= []).push(result.then(ignore, ignore));
    }
    if (!pending) return undefined;
    return pending.length === 1 ? (pending[0] as Promise<void>) : Promise.all(pending).then(ignore);
  }

  private subscribeSet(set: ListenerSet): void {
    const onMessage = (subject: string, payload: TransportPayload, attempt: number) => this.receive(set, subject, payload, attempt);
    set.subscriptions = set.route.subjects.map((relative) =>
      this.transport.subscribe(this.prefixDot + relative, set.queue, onMessage, set.delivery),
    );
  }

  /** Runs a set's listeners for one message; the promise rejects when the message or a handler failed. */
  private receive(set: ListenerSet, subject: string, payload: TransportPayload, attempt: number): Promise<unknown> | undefined {
    const broadcast = set.queue === undefined;
    let event: object, id: string, type: string, source: string, time: string | undefined, origin: string | undefined;
    if (payload instanceof Uint8Array) {
      if (broadcast && this.dispatchOwnEvents && this.codec.isOwn(payload)) return undefined;
      try {
        ({ event, id, type, source, time, origin } = this.codec.decode(payload));
      } catch (error) {
        this.rejectMessage(subject, error as Error);
        return Promise.reject(error);
      }
    } else {
      ({ event, id, type, source, time, origin } = payload);
    }
    const local = origin === this.options.instanceId;
    if (broadcast && local && this.dispatchOwnEvents) return undefined;
    this.stats.received++;
    const base = this.prefixDot + type;
    const key = subject.length > base.length + 1 && subject.startsWith(base) && subject[base.length] === '.' ? subject.slice(base.length + 1) : undefined;
    const context = new EventContext(id, type, source, origin, subject, key, local, time, attempt);
    if (!this.transport.redelivers) return this.invoker.invoke(set.listeners, event, context);
    return this.invoker.invokeRedeliverable(set, event, context);
  }

  private rejectMessage(subject: string, error: Error): void {
    this.stats.decodeErrors++;
    if (error instanceof DecodeError) this.logger.warn(`dropped a message on ${subject}: ${error.message}`);
    else this.logger.error(`dropped a message on ${subject}: ${error.message}`, error.stack);
  }

  private subjectBase(registration: DomainEventRegistration): string {
    let base = this.subjectBases.get(registration);
    if (base === undefined) {
      base = this.prefixDot + registration.name;
      this.subjectBases.set(registration, base);
    }
    return base;
  }

  private unregistered(event: unknown): UnregisteredEventError {
    const name = (event as object | null)?.constructor?.name ?? typeof event;
    return new UnregisteredEventError(`${name} is not a domain event: decorate its class with @DomainEvent()`);
  }
}
