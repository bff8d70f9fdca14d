import { errors, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { DecodeError } from '../../codec/codec-errors.js';
import { consumerName } from '../../delivery/consumer-name.js';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { DurableDelivery, type DurableMessage } from '../../delivery/durable-delivery.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RetryPolicy } from '../../delivery/retry-policy.js';
import { printable } from '../../printable.js';
import { hasWildcard, subjectMatches } from '../../routing/subject-pattern.js';
import {
  TransportClosedError,
  type ConsumerStatus,
  type MessageHeaders,
  type TransportInspection,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import { natsHeaders } from '../nats/nats-headers.js';
import { resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from '../nats/nats-options.js';
import { NatsTransport } from '../nats/nats.transport.js';
import type { TransportFactory } from '../transport-context.js';
import { ConfirmedAcks } from './jetstream-acks.js';
import { DurableConsumer, type ConsumerContext, type DurableConsumerConfig } from './jetstream-consumer.js';
import { Header, JetStreamDeadLetters } from './jetstream-dead-letters.js';
import { retryTransient } from './jetstream-errors.js';
import { resolveJetStreamOptions, type JetStreamOptions, type ResolvedJetStreamOptions } from './jetstream-options.js';
import { JetStreamPublisher } from './jetstream-publisher.js';
import { PubAcks } from './jetstream-pub-acks.js';
import type { ConsumerRecovery, PublisherStatus, StreamStatus } from './jetstream-status.js';
import { StreamLeadership } from './jetstream-stream-leadership.js';
import { ensureEventStreams } from './jetstream-streams.js';
import { KvIdempotencyStore } from './kv-idempotency-store.js';

/** What a JetStream transport is made of: the connection, the stream and consumers, and the retry policy. */
export interface JetStreamSettings {
  readonly subjectPrefix: string;
  readonly instanceId: string;
  readonly nats: ResolvedNatsOptions;
  readonly jetstream: ResolvedJetStreamOptions;
  readonly retry: RetryPolicy;
  /** How long a stop waits for running handlers and publishes awaiting their ack. */
  readonly shutdownTimeoutMs: number;
}

/** A subscription's handler, kept per scope so that replays of dead letters reach it. */
interface ScopedHandler {
  /** The consumer's name: what the idempotency record is kept per (one event reaches several consumers). */
  readonly consumer: string;
  readonly pattern: readonly string[];
  readonly handler: TransportMessageHandler;
  readonly delivery: DeliveryOptions;
}

/** What status() says of a JetStream transport, beyond the connection. */
export interface JetStreamTransportStatus extends TransportStatus {
  /** The event stream's leadership as this instance sees it. */
  readonly stream?: StreamStatus;
  readonly publishes?: PublisherStatus;
  /** Acks the consumer never confirmed within the ack wait (their messages were redelivered). */
  readonly unconfirmedAcks?: number;
  /** Consumers recovering from a lost leader, a reconnect or their own loss. */
  readonly recovering: readonly ConsumerRecovery[];
}

/** Where a delivered message goes when it failed for good. */
type DeadLetterSink = (m: JsMsg, subject: string, scope: string, consumer: string, attempts: number, error: Error, done?: () => void) => Promise<void>;

/** One delivered message as the durable delivery sees it: one object per message; its headers are read only when asked for. */
class DeliveredMessage implements DurableMessage {
  constructor(
    private readonly m: JsMsg,
    private readonly from: DurableConsumer,
    private readonly subject: string,
    private readonly scope: string,
    private readonly consumer: string,
    private readonly sink: DeadLetterSink,
    /** Runs once the message is acked or dead-lettered. */
    private readonly done: (() => void) | undefined,
  ) {}

  get eventId(): string | undefined {
    const headers = this.m.headers;
    return headers?.get(Header.EventId) || headers?.get(Header.MsgId) || undefined;
  }

  get deliveryCount(): number {
    return this.m.info.deliveryCount;
  }

  ack(): void {
    this.from.ack(this.m);
    this.done?.();
  }

  retryLater(delayMs: number): void {
    this.m.nak(delayMs);
  }

  deadLetter(attempts: number, error: Error): Promise<void> {
    return this.sink(this.m, this.subject, this.scope, this.consumer, attempts, error, this.done);
  }

  keepAlive(): void {
    this.m.working();
  }
}

function startPolicy(delivery: DeliveryOptions): Partial<ConsumerConfig> {
  if (delivery.start === 'all') return { deliver_policy: DeliverPolicy.All };
  if (delivery.start === 'new') return { deliver_policy: DeliverPolicy.New };
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: delivery.start.toISOString() };
}

/**
 * JetStream: durable, at-least-once. Every event is stored with its id as `Nats-Msg-Id` (a retried
 * publish is stored once). Each group is a durable consumer shared by its members; a group-less
 * handler gets a consumer per instance that outlives short disconnects. Handlers are acked after
 * they succeed; failures are retried with backoff (nak with delay) and, after the last attempt,
 * dead-lettered with their reason. Undecodable messages are dead-lettered at once.
 */
export class JetStreamTransport extends NatsTransport {
  protected override readonly name = 'jetstream';
  override readonly redelivers = true;
  readonly deadLetters: JetStreamDeadLetters;
  private jsm!: JetStreamManager;
  private delivery!: DurableDelivery;
  private publisher!: JetStreamPublisher;
  private leadership?: StreamLeadership;
  private acks!: ConfirmedAcks;
  private consumerContext!: ConsumerContext;
  private readonly setups = new Set<Promise<unknown>>();
  private readonly consumers = new Set<DurableConsumer>();
  /** Consumers are created asynchronously: one that comes up after stopReceiving() stops at once. */
  private receiving = true;
  private readonly scopes = new Map<string, ScopedHandler[]>();
  private readonly instanceScope: string;

  constructor(private readonly config: JetStreamSettings) {
    super(config.nats, config.shutdownTimeoutMs, { noAsyncTraces: true });
    this.instanceScope = `instance-${config.instanceId}`;
    this.deadLetters = new JetStreamDeadLetters(config.subjectPrefix, config.jetstream);
  }

  override async connect(): Promise<void> {
    await super.connect();
    const connection = this.openConnection('set up JetStream');
    const options = this.config.jetstream;
    const js = jetstream(connection);
    // Startup retries what an election (or a cluster busy creating consumers) leaves unanswered.
    this.jsm = await retryTransient(options.publishTimeoutMs, () => jetstreamManager(connection));
    await retryTransient(options.publishTimeoutMs, () => ensureEventStreams(this.jsm, this.config.subjectPrefix, options));
    this.deadLetters.attach(js, this.jsm);
    const probe = await jetstreamManager(connection, { timeout: 1_000, checkAPI: false });
    const leadership = new StreamLeadership(probe, options.stream, this.logger, options.publishTimeoutMs);
    this.leadership = leadership;
    const pubAcks = new PubAcks(connection);
    this.publisher = new JetStreamPublisher(pubAcks, options.publishTimeoutMs, options.maxPublishesInFlight, leadership);
    this.acks = new ConfirmedAcks(connection, options.ackWaitMs);
    this.consumerContext = {
      js,
      jsm: this.jsm,
      probe,
      acks: this.acks,
      logger: this.logger,
      suspectStream: () => leadership.check(),
      setupTimeoutMs: options.publishTimeoutMs,
    };
    void this.watchStatus(connection, pubAcks);
    let inbox: IdempotencyStore | undefined = options.idempotencyStore;
    if (!inbox && options.idempotency === 'memory') inbox = new MemoryIdempotencyStore(options.idempotencyWindowMs, options.idempotencyMaxEntries);
    if (!inbox && options.idempotency === 'kv') {
      inbox = await KvIdempotencyStore.open(connection, `${options.stream}_INBOX`, options.idempotencyWindowMs, options.replicas);
    }
    this.delivery = new DurableDelivery(
      this.config.retry,
      inbox,
      // Long handlers keep their message: without working() it would be redelivered after ack_wait.
      Math.max(500, options.ackWaitMs / 3),
      (deliveries) => `not acknowledged within ${options.ackWaitMs} ms on ${deliveries} deliveries (handler crashed or hung)`,
      this.logger,
    );
  }

  /**
   * Resolves once the stream stored the event (a duplicate id within the window counts as stored).
   * Through elections and reconnects it is sent again until the publish timeout; it rejects then.
   */
  override publish(subject: string, payload: Uint8Array, id: string, headers?: MessageHeaders): Promise<unknown> {
    this.openConnection(`publish to ${subject}`);
    return this.publisher.publish(subject, payload, id, headers && natsHeaders(headers));
  }

  override subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription {
    this.openConnection(`subscribe to ${subject}`);
    const scope = queue ?? this.instanceScope;
    const name = consumerName(scope, subject);
    const scoped: ScopedHandler = { consumer: name, pattern: subject.split('.'), handler, delivery };
    const siblings = this.scopes.get(scope);
    if (siblings) siblings.push(scoped);
    else {
      this.scopes.set(scope, [scoped]);
      this.consumeReplays(scope);
    }
    const options = this.config.jetstream;
    const config: DurableConsumerConfig = {
      durable_name: name,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(options.ackWaitMs),
      max_deliver: -1, // bounded by our own attempts: a redelivery past them is dead-lettered, never dropped
      max_ack_pending: delivery.ordered ? 1 : options.maxInFlight,
      ...startPolicy(delivery),
      ...(queue ? {} : { inactive_threshold: nanos(options.broadcastInactiveMs) }),
    };
    // Filtered on a subject without a wildcard, every message came on it: not decoded from its bytes again for each.
    const exact = hasWildcard(subject) ? undefined : subject;
    const consumer = this.consume(options.stream, config, (m, from) => this.handle(m, from, exact ?? m.subject, scope, scoped));
    return {
      unsubscribe: () => {
        this.scopes.set(scope, (this.scopes.get(scope) ?? []).filter((s) => s !== scoped));
        this.consumers.delete(consumer);
        // A group's consumer is shared and durable; an instance's own one goes with its subscription.
        if (queue) consumer.stop();
        else void consumer.delete();
      },
    };
  }

  /** Resolves once every consumer is created and pulling; rejects when one could not be (startup fails). */
  override async flush(): Promise<void> {
    await Promise.all(this.setups);
    await super.flush();
  }

  /** Tracks a consumer being created until it is; a failure nobody flushes for is still logged. */
  private setUp(setup: Promise<unknown>): void {
    this.setups.add(setup);
    setup.then(
      () => this.setups.delete(setup),
      (error: Error) => this.logger.error(`could not create a consumer: ${error.message}`, error.stack),
    );
  }

  /** Stops pulling; the durable consumers stay, so that a group's other members, or this instance's next start, go on. */
  override async stopReceiving(): Promise<void> {
    this.receiving = false;
    for (const consumer of this.consumers) consumer.stop();
    this.consumers.clear();
    await super.stopReceiving();
  }

  /**
   * Running handlers may finish and ack (what they publish goes out too) and publishes be stored
   * within the shutdown timeout. Handlers still running then are abandoned: their messages are handed
   * back at once (nak), for another member to take, and nothing of theirs keeps the process alive.
   */
  protected override async finishWork(): Promise<void> {
    this.leadership?.close();
    if (!this.delivery) return;
    const { shutdownTimeoutMs } = this;
    const abandoned = await this.delivery.stop(shutdownTimeoutMs);
    if (abandoned > 0) this.logger.warn(`after ${shutdownTimeoutMs} ms, ${abandoned} handlers still ran: their events were handed back for redelivery`);
    if (!(await this.publisher.settled(shutdownTimeoutMs))) {
      this.logger.warn(`after ${shutdownTimeoutMs} ms, ${this.publisher.status().inFlight} publishes still awaited their ack: they are rejected`);
    }
    this.publisher.close('the JetStream transport closed before the stream stored the event');
    await this.acks.settled(Math.min(shutdownTimeoutMs, 1_000));
    this.acks.close();
  }

  /** Each consumer's pending and ack pending, the dead letters, and what is missing on the server. */
  async inspect(): Promise<TransportInspection> {
    const { stream } = this.config.jetstream;
    const problems: string[] = [];
    const missing = (what: string, code: number) => (error: unknown) => {
      const gone = error instanceof JetStreamApiError && error.code === code;
      problems.push(gone ? `${what} is missing` : `${what}: ${(error as Error).message}`);
      return undefined;
    };
    const deadLetters = this.deadLetters.count().catch(missing('the dead letters', JetStreamApiCodes.StreamNotFound));
    // Without the stream every consumer is gone with it: that one problem says it all.
    if (!(await this.jsm.streams.info(stream).catch(missing(`stream ${stream}`, JetStreamApiCodes.StreamNotFound)))) {
      return { consumers: [], deadLetters: await deadLetters, problems };
    }
    const consumers = [...this.scopes].flatMap(([scope, handlers]) => [...new Set(handlers.map((h) => h.consumer))].map((name) => ({ scope, name })));
    const infos = await Promise.all(
      consumers.map(({ scope, name }) =>
        this.jsm.consumers.info(stream, name).then(
          (info): ConsumerStatus => ({ name, group: scope, pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered }),
          missing(`consumer ${name} of ${scope}`, JetStreamApiCodes.ConsumerNotFound),
        ),
      ),
    );
    return { consumers: infos.filter((info) => info !== undefined), deadLetters: await deadLetters, problems };
  }

  override status(): JetStreamTransportStatus {
    const recovering = [...this.consumers].map((c) => c.status()).filter((c) => c.recovering);
    if (!this.delivery) return { ...super.status(), recovering };
    return {
      ...super.status(),
      stream: this.leadership?.status(),
      publishes: this.publisher.status(),
      delivery: this.delivery.status(),
      unconfirmedAcks: this.acks.unconfirmed,
      recovering,
    };
  }

  /** A consumer that pulls into the delivery; its creation is awaited by flush(). */
  private consume(stream: string, config: DurableConsumerConfig, onMessage: (m: JsMsg, from: DurableConsumer) => Promise<void>): DurableConsumer {
    const batch = Math.min(this.config.jetstream.maxInFlight, config.max_ack_pending ?? 1);
    const consumer = new DurableConsumer(this.consumerContext, stream, config, batch, (m, from) => void onMessage(m, from).catch(this.handlingFailed));
    if (!this.receiving) return consumer;
    this.consumers.add(consumer);
    this.setUp(consumer.start());
    return consumer;
  }

  private readonly handlingFailed = (error: Error) => this.logger.error(`message handling failed: ${error.message}`, error.stack);

  /**
   * After a reconnect, every consumer pulls afresh (the client's heartbeat checks stop while disconnected).
   * A publish the server refused, or one awaiting its ack when the connection closes, fails at once rather
   * than at its timeout.
   */
  private async watchStatus(connection: NatsConnection, pubAcks: PubAcks): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === 'reconnect') for (const consumer of this.consumers) consumer.recover(`reconnected to ${status.server}`);
      else if (status.type === 'error' && status.error instanceof errors.PermissionViolationError && status.error.operation === 'publish') {
        pubAcks.refused(status.error.subject, status.error);
      }
    }
    pubAcks.close(new TransportClosedError('the NATS connection closed before the stream acknowledged the publish'));
  }

  /** A group's (or this instance's) dead letters come back through its replay consumer; each replay is removed once handled. */
  private consumeReplays(scope: string): void {
    const options = this.config.jetstream;
    this.consume(
      this.deadLetters.stream,
      {
        durable_name: `${scope}__replay`,
        filter_subject: this.deadLetters.replaySubject(scope),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(options.ackWaitMs),
        max_deliver: -1,
        max_ack_pending: options.maxInFlight,
        deliver_policy: DeliverPolicy.All,
        ...(scope === this.instanceScope ? { inactive_threshold: nanos(options.broadcastInactiveMs) } : {}),
      },
      (m, from) => {
        const original = m.headers?.get(Header.Subject) ?? '';
        const consumer = m.headers?.get(Header.Consumer);
        // Back to the consumer that gave up on it; several of one scope may have matched the subject.
        const target = this.scopes.get(scope)?.find((s) => (consumer ? s.consumer === consumer : subjectMatches(s.pattern, original.split('.'))));
        if (!target) {
          return this.deadLetter(m, original, scope, consumer ?? '', 0, new Error(`replayed, but ${scope} has no handler for ${original} any more`));
        }
        return this.handle(m, from, original, scope, target, () => void this.deadLetters.remove(m.seq).catch(this.handlingFailed));
      },
    );
  }

  /** Delivers one message to a scope's handler; `done` runs once it is acked or dead-lettered (not when retried). */
  private handle(m: JsMsg, from: DurableConsumer, subject: string, scope: string, { consumer, handler, delivery }: ScopedHandler, done?: () => void): Promise<void> {
    const message = new DeliveredMessage(m, from, subject, scope, consumer, this.deadLetterOf, done);
    return this.delivery.deliver(message, consumer, delivery, (attempt) => handler(subject, m.data, attempt, m.headers));
  }

  private readonly deadLetterOf: DeadLetterSink = (m, subject, scope, consumer, attempts, error, done) =>
    this.deadLetter(m, subject, scope, consumer, attempts, error, done);

  /** Stores the event with why it failed, then terminates it; if it cannot be stored, the event is redelivered instead. */
  private async deadLetter(m: JsMsg, subject: string, scope: string, consumer: string, attempts: number, error: Error, done?: () => void): Promise<void> {
    let id: string;
    try {
      id = await this.deadLetters.store(m, subject, scope, consumer, attempts, error);
    } catch (storeError) {
      this.logger.error(`could not dead-letter a message on ${printable(subject)}: ${(storeError as Error).message}; it will be redelivered`, (storeError as Error).stack);
      m.nak(this.config.retry.delayMs(attempts));
      return;
    }
    // A decode error's message is printable already, and its stack says nothing about the message.
    const why = error instanceof DecodeError ? error.message : printable(error.message, 1_000);
    this.logger.error(`dead-lettered ${printable(id)} on ${printable(subject)} for ${scope} after ${attempts} attempts: ${why}`, error instanceof DecodeError ? undefined : error.stack);
    // A plain +TERM: nats-server 2.9 ignores "+TERM <reason>" (the message would stay pending for good).
    m.term();
    done?.();
  }
}

export const jetStreamTransport: TransportFactory = (context) =>
  new JetStreamTransport({
    subjectPrefix: context.subjectPrefix,
    instanceId: context.instanceId,
    nats: resolveNatsOptions(context.section<NatsOptions>('nats'), context.env, context.instanceId),
    jetstream: resolveJetStreamOptions(context.section<JetStreamOptions>('jetstream'), context.env),
    retry: context.retry,
    shutdownTimeoutMs: context.shutdownTimeoutMs,
  });
