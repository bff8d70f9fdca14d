import { nanos } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { consumerName } from '../../delivery/consumer-name.js';
import { DecodeError } from '../../codec/codec-errors.js';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { DurableDelivery, type DurableMessage } from '../../delivery/durable-delivery.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RetryPolicy } from '../../delivery/retry-policy.js';
import { printable } from '../../printable.js';
import { subjectMatches } from '../../routing/subject-pattern.js';
import { type ConsumerStatus, type MessageHeaders, type TransportInspection, type TransportMessageHandler, type TransportSubscription } from '../event-transport.js';
import { resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from '../nats/nats-options.js';
import { natsHeaders } from '../nats/nats-headers.js';
import { NatsTransport } from '../nats/nats.transport.js';
import { InFlightWork } from '../in-flight-work.js';
import type { TransportFactory } from '../transport-context.js';
import { Header, JetStreamDeadLetters } from './jetstream-dead-letters.js';
import { resolveJetStreamOptions, type JetStreamOptions, type ResolvedJetStreamOptions } from './jetstream-options.js';
import { ensureEventStreams } from './jetstream-streams.js';
import { KvIdempotencyStore } from './kv-idempotency-store.js';

/** What a JetStream transport is made of: the connection, the stream and consumers, and the retry policy. */
export interface JetStreamSettings {
  readonly subjectPrefix: string;
  readonly instanceId: string;
  readonly nats: ResolvedNatsOptions;
  readonly jetstream: ResolvedJetStreamOptions;
  readonly retry: RetryPolicy;
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
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private delivery!: DurableDelivery;
  private readonly setups = new Set<Promise<unknown>>();
  private readonly consumers = new Set<ConsumerMessages>();
  /** Publishes awaiting their ack: a clean stop waits for them, so that none is reported lost. */
  private readonly unacked = new InFlightWork();
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
    this.js = jetstream(connection);
    this.jsm = await jetstreamManager(connection);
    const options = this.config.jetstream;
    await ensureEventStreams(this.jsm, this.config.subjectPrefix, options);
    this.deadLetters.attach(this.js, this.jsm);
    let inbox: IdempotencyStore | undefined = options.idempotencyStore;
    if (!inbox && options.idempotency === 'memory') inbox = new MemoryIdempotencyStore(options.idempotencyWindowMs);
    if (!inbox && options.idempotency === 'kv') {
      inbox = await KvIdempotencyStore.open(connection, `${options.stream}_INBOX`, options.idempotencyWindowMs, options.replicas);
    }
    this.delivery = new DurableDelivery(
      this.config.retry,
      inbox,
      // Long handlers keep their message: without working() it would be redelivered after ack_wait.
      Math.max(500, options.ackWaitMs / 3),
      (deliveries) => `not acknowledged within ${options.ackWaitMs} ms on ${deliveries} deliveries (handler crashed or hung)`,
    );
  }

  /** Resolves once the stream stored the event (a duplicate id within the window counts as stored). */
  override publish(subject: string, payload: Uint8Array, id: string, headers?: MessageHeaders): Promise<unknown> {
    this.openConnection(`publish to ${subject}`);
    const ack = this.js.publish(subject, payload, headers ? { msgID: id, headers: natsHeaders(headers) } : { msgID: id });
    this.unacked.track(ack);
    return ack;
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
      this.setUp(this.consumeReplays(scope));
    }
    const options = this.config.jetstream;
    const config: Partial<ConsumerConfig> = {
      durable_name: name,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(options.ackWaitMs),
      max_deliver: -1, // bounded by our own attempts: a redelivery past them is dead-lettered, never dropped
      max_ack_pending: delivery.ordered ? 1 : options.maxInFlight,
      ...startPolicy(delivery),
      ...(queue ? {} : { inactive_threshold: nanos(options.broadcastInactiveMs) }),
    };
    const consuming = this.consume(options.stream, config, (m) => this.handle(m, m.subject, scope, scoped));
    this.setUp(consuming);
    return {
      unsubscribe: () => {
        this.scopes.set(scope, (this.scopes.get(scope) ?? []).filter((s) => s !== scoped));
        void consuming.then(
          async (messages) => {
            messages.stop();
            this.consumers.delete(messages);
            // A group's consumer is shared and durable; an instance's own one goes with its subscription.
            if (!queue) await this.jsm.consumers.delete(options.stream, name).catch(() => undefined);
          },
          () => undefined, // a consumer that could not be created was logged by setUp()
        );
      },
    };
  }

  /** Resolves once every consumer is created and pulling; rejects when one could not be (startup fails). */
  override async flush(): Promise<void> {
    await Promise.all(this.setups);
    await super.flush();
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
    for (const messages of this.consumers) messages.stop();
    this.consumers.clear();
    await super.stopReceiving();
  }

  /** Handlers finish and ack first (what they publish is then in flight too), then the publishes get their acks. */
  protected override async finishWork(): Promise<void> {
    const { shutdownTimeoutMs } = this;
    const deadline = Date.now() + shutdownTimeoutMs;
    const finished = (await this.handling.settled(shutdownTimeoutMs)) && (await this.unacked.settled(Math.max(0, deadline - Date.now())));
    if (!finished) {
      this.logger.warn(
        `after ${shutdownTimeoutMs} ms, ${this.handling.size} handlers still run (their events will be redelivered) ` +
          `and ${this.unacked.size} publishes await their ack`,
      );
    }
  }

  private async consume(stream: string, config: Partial<ConsumerConfig>, onMessage: (m: JsMsg) => void): Promise<ConsumerMessages> {
    const name = config.durable_name!;
    try {
      await this.jsm.consumers.info(stream, name);
      // Where a durable consumer stands is kept; what may change is how it delivers.
      await this.jsm.consumers.update(stream, name, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending, max_deliver: config.max_deliver });
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) throw error;
      await this.jsm.consumers.add(stream, config);
    }
    const consumer = await this.js.consumers.get(stream, name);
    const messages = await consumer.consume({
      max_messages: Math.min(this.config.jetstream.maxInFlight, config.max_ack_pending ?? 1),
      callback: (m) => {
        const work = Promise.resolve(onMessage(m));
        this.handling.track(work.catch((error: Error) => this.logger.error(`message handling failed: ${error.message}`, error.stack)));
      },
    });
    if (this.receiving) this.consumers.add(messages);
    else messages.stop();
    return messages;
  }

  /** A group's (or this instance's) dead letters come back through its replay consumer. */
  private consumeReplays(scope: string): Promise<ConsumerMessages> {
    const options = this.config.jetstream;
    return this.consume(
      this.deadLetters.stream,
      {
        durable_name: `${scope}__replay`,
        filter_subject: this.deadLetters.replaySubject(scope),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(options.ackWaitMs),
        max_deliver: -1,
        deliver_policy: DeliverPolicy.All,
        ...(scope === this.instanceScope ? { inactive_threshold: nanos(options.broadcastInactiveMs) } : {}),
      },
      (m) => {
        const original = m.headers?.get(Header.Subject) ?? '';
        const consumer = m.headers?.get(Header.Consumer);
        // Back to the consumer that gave up on it; several of one scope may have matched the subject.
        const target = this.scopes.get(scope)?.find((s) => (consumer ? s.consumer === consumer : subjectMatches(s.pattern, original.split('.'))));
        if (!target) {
          return this.deadLetter(m, original, scope, consumer ?? '', 0, new Error(`replayed, but ${scope} has no handler for ${original} any more`));
        }
        return this.handle(m, original, scope, target);
      },
    );
  }

  private handle(m: JsMsg, subject: string, scope: string, { consumer, handler, delivery }: ScopedHandler): Promise<void> {
    const message: DurableMessage = {
      eventId: m.headers?.get(Header.EventId) || m.headers?.get(Header.MsgId) || undefined,
      deliveryCount: m.info.deliveryCount,
      ack: () => m.ack(),
      retryLater: (delayMs) => m.nak(delayMs),
      deadLetter: (attempts, error) => this.deadLetter(m, subject, scope, consumer, attempts, error),
      keepAlive: () => m.working(),
    };
    return this.delivery.deliver(message, consumer, delivery, (attempt) => handler(subject, m.data, attempt, m.headers));
  }

  /** Stores the event with why it failed, then terminates it; if it cannot be stored, the event is redelivered instead. */
  private async deadLetter(m: JsMsg, subject: string, scope: string, consumer: string, attempts: number, error: Error): Promise<void> {
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
    m.term(printable(error.message, 1_000));
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
