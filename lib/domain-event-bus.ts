import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Span } from '@opentelemetry/api';
import { DecodeError } from './codec/codec-errors.js';
import { NO_EXTENSIONS, type EnvelopeExtensions } from './codec/envelope-extensions.js';
import { EventCodec, type DecodedEvent } from './codec/event-codec.js';
import { EventBusConfigError } from './config/settings.js';
import { EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
import { emptyStats, type EventBusStats } from './event-bus-stats.js';
import { EventContext } from './event-context.js';
import { HandlerInvoker } from './handler-invoker.js';
import { isoNow } from './iso-clock.js';
import { ListenerSets, type DomainEventHandler, type EventSubscription, type Listener, type ListenerSet, type SubscribeOptions } from './listener-sets.js';
import { eventRegistry, type DomainEventRegistration } from './registry/event-registry.js';
import type { EventPattern } from './event-route.js';
import type { MessageHeaders } from './message-headers.js';
import type { BusObserver } from './observability/bus-observer.js';
import { BusStatistics, type HandlerStatus, type TypeStats, type TypeStatus } from './observability/bus-statistics.js';
import type { ProcessSpan } from './observability/event-tracing.js';
import { currentEventContext, runHandling } from './observability/handling-context.js';
import { Telemetry } from './observability/telemetry.js';
import { eventIdOf, routingKeyOf, subjectOf } from './event-address.js';
import { printable } from './printable.js';
import type { ResolvedEventBusOptions } from './resolve-options.js';
import type { EventTransport, LocalEnvelope, TransportInspection, TransportPayload, TransportStatus } from './transport/event-transport.js';

export interface PublishOptions {
  /** Routing key appended to the subject; overrides the key function of `@DomainEvent`. */
  key?: string;
  /** Event id chosen by the caller (a generated one otherwise). */
  id?: string;
  /**
   * The flow the event belongs to (`EventContext.correlationId` of its handlers). By default, a
   * publish made while handling an event continues that event's correlation; any other starts a
   * new one, identified by the event's own id.
   */
  correlationId?: string;
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

/** How the bus stands: `ready` only while events flow. */
export type EventBusState = 'bootstrapping' | 'ready' | 'disconnected' | 'closing';

export interface EventBusStatus {
  readonly instanceId: string;
  /** True while events flow: handlers are subscribed (the application bootstrapped) and the transport is connected. */
  readonly ready: boolean;
  readonly state: EventBusState;
  /** When the current state began (ISO 8601): ready since, or disconnected since. */
  readonly since: string;
  readonly transport: TransportStatus;
  readonly stats: Readonly<EventBusStats>;
  /** Published and received per event type (wire name). */
  readonly types: Readonly<Record<string, TypeStatus>>;
  /** Runs, errors, the last error and sampled p50/p99 durations per handler (`Class.method`). */
  readonly handlers: Readonly<Record<string, HandlerStatus>>;
  /** Present when the transactional outbox is configured. */
  readonly outbox?: OutboxStatus;
}

/** `status()` with what only the server knows (JetStream consumers' pending and ack pending, dead letters, missing streams). */
export interface EventBusInspection extends EventBusStatus {
  readonly server: TransportInspection;
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

/** The local CQRS bus, as the bridge joins it. */
export interface LocalCqrs {
  /** Publishes an event there (through the EventBus's own publisher), with CQRS's extra arguments. */
  dispatch(event: object, args: readonly unknown[]): void;
  /** False when a publish there would reach no handler or saga: it is then skipped, with its handling context. */
  listening(): boolean;
}

/** One published event on its way: also the envelope itself when it travels unencoded (one allocation per event). */
class Outgoing implements LocalEnvelope {
  /** The encoded event, or this envelope. */
  payload: Uint8Array | LocalEnvelope = this;
  /** Binary mode: the CloudEvents attributes. */
  headers: MessageHeaders | undefined = undefined;

  constructor(
    readonly event: object,
    readonly registration: DomainEventRegistration,
    readonly subject: string,
    readonly key: string | undefined,
    readonly id: string,
    /** Made by the bus for this publish (no id given): no earlier publish can have had it. */
    readonly newId: boolean,
    readonly time: string,
    readonly source: string,
    readonly origin: string,
    readonly cqrsArgs: readonly unknown[],
    readonly correlationId: string,
    readonly causationId: string | undefined,
    readonly stats: TypeStats,
  ) {}

  /** What travels beside the event: correlation (when not its own id), causation, trace context. */
  extensions: EnvelopeExtensions = NO_EXTENSIONS;
  /** The send span, while tracing. */
  span: Span | undefined;
  /** performance.now() at publish, while measuring. */
  started = 0;
  /** The context local handlers see; made when there are any. */
  context: EventContext | undefined;

  get type(): string {
    return this.registration.name;
  }
}

const RESOLVED = Promise.resolve();
const NO_ARGS: readonly unknown[] = [];
const NO_SETS: readonly ListenerSet[] = [];
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
export class DomainEventBus implements OnModuleInit, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('EventBus');
  private readonly codec: EventCodec;
  /**
   * Whether this instance runs its handlers for what it publishes itself, skipping its own copy from
   * the transport. A redelivering (durable) transport delivers the publisher its own events instead,
   * so that its handlers are acked, retried and dead-lettered like everyone else's.
   */
  private readonly dispatchOwnEvents: boolean;
  private readonly prefixDot: string;
  /** CloudEvents binary mode: attributes in headers. */
  private readonly binary: boolean;
  private readonly sets: ListenerSets;
  private readonly invoker: HandlerInvoker;
  /** Names of unregistered classes published through CQRS: bounded by the application's classes. */
  private readonly warnedTypes = new Set<string>();
  private readonly stats = emptyStats();
  private readonly statistics: BusStatistics;
  /** When the bus became what it is: created, activated, stopping. */
  private changedAt = new Date().toISOString();
  private held: Outgoing[] = [];
  /** Listener sets get transport subscriptions from activation on. */
  private subscribed = false;
  /** Publishes go out (rather than being held) once subscriptions are in place. */
  private active = false;
  /** Shutdown has begun (no more receiving); publishing goes on until `closing`. */
  private stopping = false;
  private closing = false;
  private cqrs: LocalCqrs | undefined;
  private observer: BusObserver | undefined;
  /** Tracing and metrics: loaded at module init, off until then and without `@opentelemetry/api`. */
  private telemetry = Telemetry.off;
  private transactional: TransactionalCapture | undefined;

  constructor(
    @Inject(RESOLVED_EVENT_BUS_OPTIONS) private readonly options: ResolvedEventBusOptions,
    @Inject(EVENT_TRANSPORT) private readonly transport: EventTransport,
  ) {
    const { mode, maxMessageBytes } = options.codec;
    this.binary = mode === 'binary' && transport.encodes;
    if (this.binary && !transport.carriesHeaders) {
      throw new EventBusConfigError(
        `option cloudEvents.mode or environment variable EVENT_BUS_CLOUDEVENTS_MODE: binary mode needs a transport that carries headers; ${transport.status().transport} does not`,
      );
    }
    this.codec = new EventCodec(eventRegistry, { origin: options.instanceId, source: options.source, subjectPrefix: options.subjectPrefix, maxMessageBytes });
    this.dispatchOwnEvents = !transport.redelivers;
    this.prefixDot = `${options.subjectPrefix}.`;
    this.statistics = new BusStatistics(this.prefixDot);
    this.invoker = new HandlerInvoker(this.stats, this.statistics, this.logger, options.causation);
    this.sets = new ListenerSets(eventRegistry, options.subjectPrefix, options.retry.attempts, {
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
    // Looked up once: an OpenTelemetry SDK is started before the application is created, or not at all.
    this.telemetry = await Telemetry.load(this.transport.status().transport);
    this.telemetry.observe({ held: () => this.held.length, inspect: async () => this.transport.inspect?.() });
    this.invoker.telemetry = this.telemetry;
  }

  /**
   * Shutdown begins: stop taking events (a group's other members get them from now on), while
   * publishing goes on through `beforeApplicationShutdown` and the requests the HTTP server finishes.
   */
  async onModuleDestroy(): Promise<void> {
    this.subscribed = false;
    this.stopping = true;
    this.changedAt = new Date().toISOString();
    await this.transport.stopReceiving();
  }

  /**
   * After the HTTP server has stopped: handlers still running finish (up to the shutdown timeout),
   * what was published is delivered, then the connection closes. Publishing rejects from then on.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.transport.close();
    this.closing = true;
    this.active = false;
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
    const transport = this.transport.status();
    let state: EventBusState = this.stopping ? 'closing' : this.active ? 'ready' : 'bootstrapping';
    let since = this.changedAt;
    if (state === 'ready' && !transport.connected) state = 'disconnected';
    // Ready since activation, or since the transport came back if that was later.
    if ((state === 'disconnected' || state === 'ready') && transport.since && transport.since > since) since = transport.since;
    return {
      instanceId: this.instanceId,
      ready: state === 'ready',
      state,
      since,
      transport,
      stats: { ...this.stats },
      types: this.statistics.typeStatus(),
      handlers: this.statistics.handlerStatus(),
      ...(this.transactional ? { outbox: this.transactional.status() } : {}),
    };
  }

  /** `status()` and what only the server knows: on JetStream each consumer's pending and ack pending, the dead letters, a missing stream or consumer. */
  async inspect(): Promise<EventBusInspection> {
    const server = (await this.transport.inspect?.()) ?? { problems: [] };
    return { ...this.status(), server };
  }

  /** @internal Used by the handler loader: one listener per `@OnDomainEvent` method. */
  addListener(pattern: EventPattern, listener: Listener, options: SubscribeOptions): EventSubscription {
    return this.sets.add(pattern, listener, options);
  }

  /** @internal Test helpers: told of every publish and handler run. */
  observe(observer: BusObserver): void {
    this.observer = observer;
    this.invoker.observer = observer;
  }

  /** @internal Installed by the outbox: events published inside a database transaction are written to it, not sent. */
  setTransactionalCapture(capture: TransactionalCapture): void {
    this.transactional = capture;
  }

  /** @internal Installed by the CQRS bridge: how events reach the local CQRS EventBus. */
  setLocalCqrs(cqrs: LocalCqrs): void {
    this.cqrs = cqrs;
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
      this.cqrs?.dispatch(event, args);
      return;
    }
    try {
      // Inside a transaction the event reaches the CQRS handlers after commit, from the transport, like everyone's.
      const captured = this.transactional?.capture(event, registration, undefined);
      if (captured) captured.catch((error) => this.publishFromCqrsFailed(registration, error));
      else this.send(event, registration, undefined, args).catch(ignore); // failures are logged and counted in send()
    } catch (error) {
      this.publishFromCqrsFailed(registration, error);
      this.cqrs?.dispatch(event, args);
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
    this.changedAt = new Date().toISOString();
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
    const base = this.codec.subjectBase(registration);
    const subject = subjectOf(base, key, registration);
    const id = eventIdOf(options?.id, registration);
    const time = isoNow();
    // Caused by the event being handled here, if any: its flow continues.
    const cause = this.options.causation ? currentEventContext() : undefined;
    const correlationId = options?.correlationId ?? cause?.correlationId ?? id;
    const stats = this.statistics.type(registration.name);
    const publish = new Outgoing(
      event, registration, subject, key, id, options?.id === undefined, time, this.options.source, this.options.instanceId, cqrsArgs, correlationId, cause?.id, stats,
    );
    const { tracing, metrics } = this.telemetry;
    if (metrics) publish.started = performance.now();
    if (tracing) publish.span = tracing.startSend(publish, base);
    if (correlationId !== id || cause || publish.span) {
      publish.extensions = {
        correlationid: correlationId !== id ? correlationId : undefined,
        causationid: cause?.id,
        traceparent: publish.span && tracing!.traceparent(publish.span),
        tracestate: publish.span && tracing!.tracestate(publish.span),
      };
    }
    if (this.transport.encodes) {
      try {
        if (this.binary) {
          const { body, headers } = this.codec.encodeBinary(event, registration, id, time, publish.extensions);
          publish.payload = body;
          publish.headers = headers;
        } else publish.payload = this.codec.encode(event, registration, id, time, publish.extensions);
      } catch (error) {
        this.sent(publish, error);
        throw error;
      }
      publish.span?.setAttribute('messaging.message.body.size', (publish.payload as Uint8Array).length);
    }
    if (!this.active) {
      if (this.closing) throw new Error(`cannot publish ${registration.name}: the event bus is shut down`);
      this.held.push(publish);
      return RESOLVED;
    }
    return this.transmit(publish);
  }

  /** Hands the event to the transport and runs the local handlers; settles when both are done. */
  private transmit(publish: Outgoing): Promise<void> {
    let stored: Promise<unknown> | void;
    try {
      stored = this.transport.publish(publish.subject, publish.payload, publish.id, publish.headers, publish.newId);
    } catch (error) {
      this.sent(publish, error);
      throw error;
    }
    this.stats.published++;
    publish.stats.published++;
    if (this.observer?.published) this.observer.published(publish.event, this.contextOf(publish));
    const handled = this.dispatchLocally(publish);
    if (!stored) {
      this.sent(publish);
      return handled ?? RESOLVED;
    }
    const accepted = stored.then(
      () => this.sent(publish),
      (error) => {
        this.publishFailed(publish, error);
        throw error;
      },
    );
    return handled ? Promise.all([accepted, handled]).then(ignore) : accepted;
  }

  /** Ends the send span and records the publish metrics, once (the transport took the event or refused it). */
  private sent(publish: Outgoing, error?: unknown): void {
    if (publish.span) this.telemetry.tracing!.end(publish.span, error);
    if (publish.started !== 0) this.telemetry.metrics!.published(publish.stats.destination, (performance.now() - publish.started) / 1000, error);
    publish.span = undefined;
    publish.started = 0;
  }

  private publishFailed(publish: Outgoing, error: unknown): void {
    this.sent(publish, error);
    this.stats.publishErrors++;
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error(`could not publish ${publish.registration.name} ${publish.id}: ${err.message}`, err.stack);
  }

  /**
   * CQRS handlers always run here at once, as with CQRS alone; the bridge skips this instance's own
   * events. They and the local listeners run as the handling of the event (one async context for
   * all), so that what they publish is caused by it.
   */
  private dispatchLocally(publish: Outgoing): Promise<void> | undefined {
    const sets = this.dispatchOwnEvents ? this.sets.broadcastFor(publish.registration.name) : NO_SETS;
    if (sets.length === 0 && !this.cqrs?.listening()) return undefined;
    const context = this.contextOf(publish);
    return this.options.causation ? runHandling(context, this.dispatchWithin, publish, sets) : this.dispatchWithin(publish, sets);
  }

  private readonly dispatchWithin = (publish: Outgoing, sets: readonly ListenerSet[]): Promise<void> | undefined => {
    this.cqrs?.dispatch(publish.event, publish.cqrsArgs);
    if (sets.length === 0) return undefined;
    const context = publish.context!;
    const type = context.type;
    const delivery = this.telemetry.tracing?.startProcess(context, publish.stats.destination, undefined, undefined);
    let pending: Promise<unknown>[] | undefined;
    for (const set of sets) {
      if (set.route.key !== undefined || set.route.type === undefined) {
        if (!set.route.matches(type, publish.key)) continue;
      }
      // A failing handler is logged and counted; it does not fail the publish.
      const result = this.invoker.invoke(set.listeners, publish.event, context, undefined, delivery);
      if (result) (pending ??= []).push(result.then(ignore, ignore));
    }
    return this.delivered(delivery, pending && (pending.length === 1 ? (pending[0] as Promise<void>) : Promise.all(pending).then(ignore)));
  };

  /** The context of an event published here, as its local handlers see it. */
  private contextOf(publish: Outgoing): EventContext {
    if (publish.context) return publish.context;
    const { traceparent, tracestate } = publish.extensions;
    return (publish.context = new EventContext(
      publish.id, publish.registration.name, this.options.source, this.options.instanceId, publish.subject, publish.key, true, publish.time, 1,
      publish.correlationId, publish.causationId, traceparent, tracestate,
    ));
  }

  /** Ends a delivery's process span once its handlers settled (with the first failure, if any); passes the outcome on. */
  private delivered<T>(delivery: ProcessSpan | undefined, outcome: Promise<T> | undefined): Promise<T> | undefined {
    if (!delivery) return outcome;
    const tracing = this.telemetry.tracing!;
    if (!outcome) {
      tracing.end(delivery.span);
      return undefined;
    }
    outcome.then(
      () => tracing.end(delivery.span),
      (error) => tracing.end(delivery.span, error),
    );
    return outcome;
  }

  private subscribeSet(set: ListenerSet): void {
    const onMessage = (subject: string, payload: TransportPayload, attempt: number, headers: MessageHeaders | undefined) =>
      this.receive(set, subject, payload, attempt, headers);
    set.subscriptions = set.route.subjects.map((relative) =>
      this.transport.subscribe(this.prefixDot + relative, set.queue, onMessage, set.delivery),
    );
  }

  /**
   * Runs a set's listeners for one message; the promise rejects when the message or a handler
   * failed. Its own broadcasts are recognised first, before anything is parsed.
   */
  private receive(set: ListenerSet, subject: string, payload: TransportPayload, attempt: number, headers: MessageHeaders | undefined): Promise<unknown> | undefined {
    const broadcast = set.queue === undefined;
    let decoded: DecodedEvent | LocalEnvelope;
    if (payload instanceof Uint8Array) {
      if (broadcast && this.dispatchOwnEvents && this.codec.isOwn(payload, headers)) return undefined;
      try {
        decoded = this.codec.decode(subject, payload, headers);
      } catch (error) {
        this.rejectMessage(subject, error as Error);
        return Promise.reject(error);
      }
    } else {
      decoded = payload;
    }
    const { event, id, type, source, time, origin, key } = decoded;
    const local = origin === this.options.instanceId;
    if (broadcast && local && this.dispatchOwnEvents) return undefined;
    this.stats.received++;
    const stats = this.statistics.type(type);
    stats.received++;
    const { correlationid, causationid, traceparent, tracestate } = decoded.extensions ?? NO_EXTENSIONS;
    const context = new EventContext(id, type, source, origin, subject, key, local, time, attempt, correlationid ?? id, causationid, traceparent, tracestate);
    const { tracing, metrics } = this.telemetry;
    metrics?.consumedOne(stats.destination, set.queue, attempt);
    const delivery = tracing?.startProcess(context, stats.destination, set.queue, payload instanceof Uint8Array ? payload.length : undefined);
    if (!this.transport.redelivers) return this.delivered(delivery, this.invoker.invoke(set.listeners, event, context, undefined, delivery));
    return this.delivered(delivery, this.invoker.invokeRedeliverable(set, event, context, delivery));
  }

  /** One line per message, every wire value in it printable; a decode error has no stack worth printing. */
  private rejectMessage(subject: string, error: Error): void {
    this.stats.decodeErrors++;
    this.telemetry.metrics?.decodeFailed(error);
    if (error instanceof DecodeError) this.logger.warn(`dropped a message on ${printable(subject)} (${error.reason}): ${error.message}`);
    else this.logger.error(`dropped a message on ${printable(subject)}: ${printable(error.message, 1_000)}`, error.stack);
  }

  private unregistered(event: unknown): UnregisteredEventError {
    const name = (event as object | null)?.constructor?.name ?? typeof event;
    return new UnregisteredEventError(`${name} is not a domain event: decorate its class with @DomainEvent()`);
  }
}
