import { createHash } from 'node:crypto';
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
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { DurableDelivery, type DurableMessage } from '../../delivery/durable-delivery.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RetryPolicy } from '../../delivery/retry-policy.js';
import { subjectMatches } from '../../routing/subject-pattern.js';
import { TransportClosedError, type TransportMessageHandler, type TransportSubscription } from '../event-transport.js';
import { resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from '../nats/nats-options.js';
import { NatsTransport } from '../nats/nats.transport.js';
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
}

/** A subscription's handler, kept per scope so that replays of dead letters reach it. */
interface ScopedHandler {
  /** The consumer's name: what the idempotency record is kept per (one event reaches several consumers). */
  readonly consumer: string;
  readonly pattern: readonly string[];
  readonly handler: TransportMessageHandler;
  readonly delivery: DeliveryOptions;
}

/** Whether the promise settles within the time; the timer never outlives it (a stopping process exits at once). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A consumer name for a scope and subject: readable, and unique through a hash of the exact subject. */
function consumerName(scope: string, subject: string): string {
  const readable = subject.replace(/\*/g, 'any').replace(/>/g, 'all').replace(/[^A-Za-z0-9_-]/g, '_').slice(-64);
  return `${scope}__${readable}_${createHash('sha256').update(subject).digest('hex').slice(0, 8)}`;
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
  private readonly inFlight = new Set<Promise<void>>();
  /** Publishes awaiting their ack: a clean stop waits for them, so that none is reported lost. */
  private readonly unacked = new Set<Promise<unknown>>();
  private closing = false;
  private readonly scopes = new Map<string, ScopedHandler[]>();
  private readonly instanceScope: string;

  constructor(private readonly config: JetStreamSettings) {
    super(config.nats, { noAsyncTraces: true });
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
  override publish(subject: string, payload: Uint8Array, id: string): Promise<unknown> {
    if (this.closing) throw new TransportClosedError(`cannot publish to ${subject}: the JetStream transport is closing`);
    this.openConnection(`publish to ${subject}`);
    const ack = this.js.publish(subject, payload, { msgID: id });
    this.unacked.add(ack);
    const forget = () => this.unacked.delete(ack);
    ack.then(forget, forget);
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

  /** Tracks a consumer being created until it is; a failure nobody flushes for is still logged. */
  private setUp(setup: Promise<unknown>): void {
    this.setups.add(setup);
    setup.then(
      () => this.setups.delete(setup),
      (error: Error) => this.logger.error(`could not create a consumer: ${error.message}`, error.stack),
    );
  }

  /** Stops pulling, lets running handlers finish (up to the shutdown timeout) and ack, then drains. */
  override async close(): Promise<void> {
    this.closing = true;
    for (const messages of this.consumers) messages.stop();
    this.consumers.clear();
    const { shutdownTimeoutMs } = this.config.jetstream;
    const settled = Promise.all([...this.inFlight, ...[...this.unacked].map((ack) => ack.catch(() => undefined))]);
    if (!(await settlesWithin(settled, shutdownTimeoutMs))) {
      this.logger.warn(
        `after ${shutdownTimeoutMs} ms, ${this.inFlight.size} handlers still run (their events will be redelivered) ` +
          `and ${this.unacked.size} publishes await their ack`,
      );
    }
    await super.close();
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
        this.track(work);
      },
    });
    this.consumers.add(messages);
    return messages;
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.then(() => undefined, (error) => this.logger.error(`message handling failed: ${(error as Error).message}`, (error as Error).stack));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
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
    return this.delivery.deliver(message, consumer, delivery, (attempt) => handler(subject, m.data, attempt));
  }

  /** Stores the event with why it failed, then terminates it; if it cannot be stored, the event is redelivered instead. */
  private async deadLetter(m: JsMsg, subject: string, scope: string, consumer: string, attempts: number, error: Error): Promise<void> {
    let id: string;
    try {
      id = await this.deadLetters.store(m, subject, scope, consumer, attempts, error);
    } catch (storeError) {
      this.logger.error(`could not dead-letter a message on ${subject}: ${(storeError as Error).message}; it will be redelivered`, (storeError as Error).stack);
      m.nak(this.config.retry.delayMs(attempts));
      return;
    }
    this.logger.error(`dead-lettered ${id} on ${subject} for ${scope} after ${attempts} attempts: ${error.message}`, error.stack);
    m.term();
  }
}

export const jetStreamTransport: TransportFactory = (context) =>
  new JetStreamTransport({
    subjectPrefix: context.subjectPrefix,
    instanceId: context.instanceId,
    nats: resolveNatsOptions(context.section<NatsOptions>('nats'), context.env, context.instanceId),
    jetstream: resolveJetStreamOptions(context.section<JetStreamOptions>('jetstream'), context.env),
    retry: context.retry,
  });
