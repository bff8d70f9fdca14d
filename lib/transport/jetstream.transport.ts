import { createHash } from 'node:crypto';
import { headers as natsHeaders, nanos, type MsgHdrs } from '@nats-io/transport-node';
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
import { DecodeError } from '../event-codec.js';
import { KvIdempotencyStore, MemoryIdempotencyStore, type IdempotencyStore } from '../idempotency-store.js';
import type { ResolvedEventBusOptions } from '../resolve-options.js';
import { retryDelayMs } from '../retry-backoff.js';
import { subjectMatches } from '../subject-pattern.js';
import { TransportClosedError, type DeliveryOptions, type TransportMessageHandler, type TransportSubscription } from './event-transport.js';
import { deadLetterPrefix, deadLetterStream, ensureEventStreams } from './jetstream-streams.js';
import { NatsTransport } from './nats.transport.js';

/** A dead-lettered event: what failed, where, and why. */
export interface DeadLetter {
  /** Sequence in the dead-letter stream. */
  readonly seq: number;
  /** The event id (CloudEvents id). */
  readonly id: string;
  readonly type: string;
  /** The group, or `instance-<instance id>` for a group-less handler. */
  readonly group: string;
  /** The subject the event was published to. */
  readonly subject: string;
  readonly attempts: number;
  readonly error: string;
  readonly time: Date;
}

const enum Header {
  MsgId = 'Nats-Msg-Id',
  Subject = 'Dlq-Subject',
  Scope = 'Dlq-Scope',
  Consumer = 'Dlq-Consumer',
  Attempts = 'Dlq-Attempts',
  Error = 'Dlq-Error',
  EventId = 'Dlq-Event-Id',
  Type = 'Dlq-Type',
}

/** A subscription's handler, kept per scope so that replays of dead letters reach it. */
interface ScopedHandler {
  /** The consumer's name: what the idempotency record is kept per (one event reaches several consumers). */
  readonly consumer: string;
  readonly pattern: readonly string[];
  readonly handler: TransportMessageHandler;
  readonly delivery: DeliveryOptions;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ').slice(0, 1024);

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
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private inbox?: IdempotencyStore;
  private readonly setups = new Set<Promise<unknown>>();
  private readonly consumers = new Set<ConsumerMessages>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Publishes awaiting their ack: a clean stop waits for them, so that none is reported lost. */
  private readonly unacked = new Set<Promise<unknown>>();
  private closing = false;
  private readonly scopes = new Map<string, ScopedHandler[]>();
  private readonly instanceScope: string;
  private readonly deadLetterPrefix: string;

  constructor(private readonly config: ResolvedEventBusOptions) {
    super(config.nats, { noAsyncTraces: true });
    this.instanceScope = `instance-${config.instanceId}`;
    this.deadLetterPrefix = deadLetterPrefix(config.subjectPrefix);
  }

  override async connect(): Promise<void> {
    await super.connect();
    const connection = this.openConnection('set up JetStream');
    this.js = jetstream(connection);
    this.jsm = await jetstreamManager(connection);
    const options = this.config.jetstream;
    await ensureEventStreams(this.jsm, this.config.subjectPrefix, options);
    if (options.idempotencyStore) this.inbox = options.idempotencyStore;
    else if (options.idempotency === 'memory') this.inbox = new MemoryIdempotencyStore(options.idempotencyWindowMs);
    else if (options.idempotency === 'kv') {
      this.inbox = await KvIdempotencyStore.open(connection, `${options.stream}_INBOX`, options.idempotencyWindowMs, options.replicas);
    }
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
    const config: Partial<ConsumerConfig> = {
      durable_name: name,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.config.jetstream.ackWaitMs),
      max_deliver: -1, // bounded by our own attempts: a redelivery past them is dead-lettered, never dropped
      max_ack_pending: delivery.ordered ? 1 : this.config.jetstream.maxInFlight,
      ...startPolicy(delivery),
      ...(queue ? {} : { inactive_threshold: nanos(this.config.jetstream.broadcastInactiveMs) }),
    };
    const consuming = this.consume(this.config.jetstream.stream, config, (m) => this.handle(m, m.subject, scope, scoped));
    this.setUp(consuming);
    return {
      unsubscribe: () => {
        this.scopes.set(scope, (this.scopes.get(scope) ?? []).filter((s) => s !== scoped));
        void consuming.then(
          async (messages) => {
            messages.stop();
            this.consumers.delete(messages);
            // A group's consumer is shared and durable; an instance's own one goes with its subscription.
            if (!queue) await this.jsm.consumers.delete(this.config.jetstream.stream, name).catch(() => undefined);
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
    const settled = Promise.all([...this.inFlight, ...[...this.unacked].map((ack) => ack.catch(() => undefined))]);
    if (!(await settlesWithin(settled, this.config.jetstream.shutdownTimeoutMs))) {
      this.logger.warn(
        `after ${this.config.jetstream.shutdownTimeoutMs} ms, ${this.inFlight.size} handlers still run (their events will be redelivered) ` +
          `and ${this.unacked.size} publishes await their ack`,
      );
    }
    await super.close();
  }

  async listDeadLetters(): Promise<DeadLetter[]> {
    const stream = deadLetterStream(this.config.jetstream);
    const { state } = await this.jsm.streams.info(stream);
    const letters: DeadLetter[] = [];
    if (state.messages === 0) return letters;
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const stored = await this.jsm.streams.getMessage(stream, { seq }).catch((error) => {
        if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return null;
        throw error;
      });
      if (!stored || !stored.subject.startsWith(`${this.deadLetterPrefix}.dead.`)) continue;
      const h = stored.header;
      letters.push({
        seq,
        id: h.get(Header.EventId),
        type: h.get(Header.Type),
        group: h.get(Header.Scope),
        subject: h.get(Header.Subject),
        attempts: Number(h.get(Header.Attempts)),
        error: h.get(Header.Error),
        time: stored.time,
      });
    }
    return letters;
  }

  /** Sends dead letters back to their group (or instance) and removes them; they are dead-lettered again if they fail again. */
  async replayDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    const stream = deadLetterStream(this.config.jetstream);
    for (const letter of letters) {
      const stored = await this.jsm.streams.getMessage(stream, { seq: letter.seq });
      if (!stored) continue;
      const h = natsHeaders();
      h.set(Header.Subject, letter.subject);
      h.set(Header.EventId, letter.id);
      h.set(Header.Consumer, stored.header.get(Header.Consumer));
      await this.js.publish(`${this.deadLetterPrefix}.replay.${letter.group}`, stored.data, { headers: h, msgID: `replay-${stream}-${letter.seq}` });
      await this.jsm.streams.deleteMessage(stream, letter.seq);
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
    const subject = `${this.deadLetterPrefix}.replay.${scope}`;
    return this.consume(
      deadLetterStream(this.config.jetstream),
      {
        durable_name: `${scope}__replay`,
        filter_subject: subject,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(this.config.jetstream.ackWaitMs),
        max_deliver: -1,
        deliver_policy: DeliverPolicy.All,
        ...(scope === this.instanceScope ? { inactive_threshold: nanos(this.config.jetstream.broadcastInactiveMs) } : {}),
      },
      (m) => {
        const original = m.headers?.get(Header.Subject) ?? '';
        const consumer = m.headers?.get(Header.Consumer);
        // Back to the consumer that gave up on it; several of one scope may have matched the subject.
        const target = this.scopes.get(scope)?.find((s) => (consumer ? s.consumer === consumer : subjectMatches(s.pattern, original.split('.'))));
        if (!target) {
          return this.deadLetter(m, original, scope, 0, new Error(`replayed, but ${scope} has no handler for ${original} any more`), consumer ?? '');
        }
        return this.handle(m, original, scope, target);
      },
    );
  }

  private async handle(m: JsMsg, subject: string, scope: string, { consumer, handler, delivery }: ScopedHandler): Promise<void> {
    const id = m.headers?.get(Header.EventId) || m.headers?.get(Header.MsgId);
    if (id && this.inbox && (await this.inbox.seen(consumer, id))) {
      m.ack();
      return;
    }
    const delivered = m.info.deliveryCount;
    if (delivered > delivery.attempts) {
      const error = new Error(`not acknowledged within ${this.config.jetstream.ackWaitMs} ms on ${delivered - 1} deliveries (handler crashed or hung)`);
      return this.deadLetter(m, subject, scope, delivered - 1, error, consumer);
    }
    // Long handlers keep their message: without this it would be redelivered after ack_wait.
    const keepAlive = setInterval(() => m.working(), Math.max(500, this.config.jetstream.ackWaitMs / 3));
    try {
      for (let attempt = delivered; ; attempt++) {
        try {
          await handler(subject, m.data, attempt);
          break;
        } catch (error) {
          if (error instanceof DecodeError || attempt >= delivery.attempts) {
            return await this.deadLetter(m, subject, scope, attempt, error as Error, consumer);
          }
          const delay = retryDelayMs(attempt, this.config.retry);
          if (!delivery.ordered) {
            m.nak(delay);
            return;
          }
          await sleep(delay); // ordered: retry in place, so that no later event overtakes this one
        }
      }
      if (id && this.inbox) await this.inbox.record(consumer, id);
      m.ack();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Stores the event with why it failed, then terminates it; if it cannot be stored, the event is redelivered instead. */
  private async deadLetter(m: JsMsg, subject: string, scope: string, attempts: number, error: Error, consumer: string): Promise<void> {
    const h: MsgHdrs = natsHeaders();
    const id = m.headers?.get(Header.EventId) || m.headers?.get(Header.MsgId) || '';
    h.set(Header.Subject, subject);
    h.set(Header.Scope, scope);
    h.set(Header.Consumer, consumer);
    h.set(Header.Attempts, String(attempts));
    h.set(Header.Error, oneLine(`${error.name}: ${error.message}`));
    h.set(Header.EventId, id);
    h.set(Header.Type, typeOf(m.data));
    try {
      await this.js.publish(`${this.deadLetterPrefix}.dead.${scope}`, m.data, { headers: h, msgID: `dead-${consumer}-${id || m.seq}-${m.info.streamSequence}` });
    } catch (publishError) {
      this.logger.error(`could not dead-letter ${id} on ${subject}: ${(publishError as Error).message}; it will be redelivered`, (publishError as Error).stack);
      m.nak(retryDelayMs(attempts, this.config.retry));
      return;
    }
    this.logger.error(`dead-lettered ${id} on ${subject} for ${scope} after ${attempts} attempts: ${error.message}`, error.stack);
    m.term(oneLine(error.message));
  }
}

/** The CloudEvents type of a body, for the dead-letter listing; empty when the body is not one. */
function typeOf(data: Uint8Array): string {
  try {
    const type = JSON.parse(new TextDecoder().decode(data))?.type;
    return typeof type === 'string' ? type : '';
  } catch {
    return '';
  }
}
