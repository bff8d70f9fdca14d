import { readFileSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import type { AsyncMessage, Cmd, Connection, ConnectionOptions, Consumer, Envelope, MethodParams, Publisher } from 'rabbitmq-client';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { DurableDelivery, type DurableMessage } from '../../delivery/durable-delivery.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RetryPolicy } from '../../delivery/retry-policy.js';
import { subjectMatches } from '../../routing/subject-pattern.js';
import {
  PublishTimeoutError,
  TransportClosedError,
  type EventTransport,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import type { MessageHeaders } from '../../message-headers.js';
import { ConnectionHealth } from '../connection-health.js';
import type { TransportFactory } from '../transport-context.js';
import { loadRabbitMqClient } from './rabbitmq-client.js';
import { RabbitMqConnectError } from './rabbitmq-connect-error.js';
import { RabbitMqArchive } from './rabbitmq-archive.js';
import { bodyOf, RabbitMqDeadLetters } from './rabbitmq-dead-letters.js';
import { queueExists } from './rabbitmq-queries.js';
import { resolveRabbitMqOptions, type RabbitMqOptions, type ResolvedRabbitMqOptions } from './rabbitmq-options.js';
import { bindingKey, CLOUDEVENTS_CONTENT_TYPE, exactMatchNeeded, Header, oneLine, RabbitMqTopology, retryTierMs, wireCount as count } from './rabbitmq-topology.js';
import { RecentPublishes } from './recent-publishes.js';

/** What a RabbitMQ transport is made of: its connection settings, the instance, and the retry policy. */
export interface RabbitMqSettings {
  readonly instanceId: string;
  readonly rabbitmq: ResolvedRabbitMqOptions;
  readonly retry: RetryPolicy;
  /** How long close() waits for running handlers and unconfirmed publishes. */
  readonly shutdownTimeoutMs: number;
}

/** One subscription: its queue, and how its messages are handled. */
interface QueueSubscription {
  readonly queue: string;
  /** The group, or `instance-<id>`: what dead letters name. */
  readonly scope: string;
  /** Its pattern, on the instance's shared queue: retries and replays carry it back to it. */
  readonly target: string | undefined;
  /** What handled ids are recorded per: the queue, and the pattern on a shared queue. */
  readonly inboxScope: string;
  /** The NATS pattern, tokenised, when the queue can hold subjects it does not match. */
  readonly exactPattern: readonly string[] | undefined;
  readonly handler: TransportMessageHandler;
  readonly delivery: DeliveryOptions;
}

/** The queue this instance's group-less subscriptions share: one consumer, a binding per pattern. */
interface SharedQueue {
  readonly consumer: Consumer;
  readonly subscriptions: Set<QueueSubscription>;
  /** Subscriptions per binding key: bound while at least one. */
  readonly bindings: Map<string, number>;
  /** Resolves once the consumer first is ready (the queue exists). */
  readonly ready: Promise<void>;
}

/** Broker refusals that no retry mends: the subscription is given up, and its error reported. */
const PERMANENT = new Set(['PRECONDITION_FAILED', 'ACCESS_REFUSED', 'NOT_ALLOWED', 'RESOURCE_LOCKED']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The promise, or a rejection saying why once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(why())), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}

const asBuffer = (payload: Uint8Array): Buffer => (Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));

/**
 * RabbitMQ: durable, at least once. Events go to a topic exchange with the subject as routing
 * key and publisher confirms. A group has a durable queue per subject (quorum by default) shared
 * by its members; this instance's group-less subscriptions share its own queue, a binding each,
 * kept while it reconnects. Handlers are acked after they succeed; a failure is retried after a
 * delay (a copy waits in a TTL queue, then returns to its queue) and, after the last attempt,
 * dead-lettered into a stream with its reason. Undecodable messages are dead-lettered at once.
 * With the archive on, a new group can start from history.
 */
export class RabbitMqTransport implements EventTransport {
  readonly encodes = true;
  readonly redelivers = true;
  readonly deadLetters: RabbitMqDeadLetters;
  private readonly archive?: RabbitMqArchive;
  private readonly logger = new Logger('EventBus:RabbitMQ');
  private readonly options: ResolvedRabbitMqOptions;
  private readonly topology: RabbitMqTopology;
  private readonly instanceScope: string;
  private readonly recent: RecentPublishes;
  private connection?: Connection;
  private publisher?: Publisher;
  private delivery!: DurableDelivery;
  /** Consumers of the subscriptions with a queue of their own. */
  private readonly consumers = new Map<QueueSubscription, Consumer>();
  /** Consumers stopped by stopReceiving(), closing once their handlers settled. */
  private readonly consumersClosing: Promise<void>[] = [];
  private shared?: SharedQueue;
  /** Subscriptions being set up, until their consumer is ready (or given up). */
  private readonly setups = new Set<Promise<void>>();
  /**
   * Subscriptions being set up, by pattern: a publish to a subject one of them matches waits for it
   * (for at most the publish timeout), so that an event published after a subscribe on this
   * instance reaches that subscription, as on a single NATS connection.
   */
  private readonly pending = new Map<Promise<void>, readonly string[]>();
  /** Publishes awaiting their confirm: a clean stop waits for them. */
  private unconfirmed = 0;
  private drained?: () => void;
  /** Retry queues declared on this connection, by delay. */
  private readonly tiers = new Map<number, Promise<unknown>>();
  private closing = false;
  private readonly health = new ConnectionHealth();

  constructor(private readonly config: RabbitMqSettings) {
    this.options = config.rabbitmq;
    this.topology = new RabbitMqTopology(this.options.exchange, this.options.queueType, this.options.broadcastInactiveMs);
    this.instanceScope = `instance-${config.instanceId}`;
    this.recent = new RecentPublishes(this.options.duplicateWindowMs);
    this.deadLetters = new RabbitMqDeadLetters(this.topology);
    if (this.options.archiveMaxAgeMs > 0) this.archive = new RabbitMqArchive(this.topology, this.options.archiveMaxAgeMs);
  }

  async connect(): Promise<void> {
    const { Connection } = await loadRabbitMqClient();
    const options = this.options;
    const connection = new Connection(this.connectionOptions());
    connection.on('connection', () => this.onConnection());
    connection.on('error', (error: Error) => this.onError(error));
    connection.on('connection.blocked', (reason: string) => {
      this.health.failed(`blocked by the broker: ${reason}`);
      this.logger.warn(`the broker blocks publishing (${reason}); publishes wait up to ${options.publishTimeoutMs} ms`);
    });
    try {
      await connection.onConnect(options.connectTimeoutMs);
      await connection.exchangeDeclare({ exchange: this.topology.exchange, type: 'topic', durable: true });
      await connection.exchangeDeclare({ exchange: this.topology.retryExchange, type: 'headers', durable: true });
      await connection.queueDeclare({ queue: this.topology.deadLetterStream, durable: true, arguments: { 'x-queue-type': 'stream' } });
      await this.archive?.declare(connection);
    } catch (error) {
      connection.unsafeDestroy();
      const cause = (error as Error).cause as Error | undefined;
      const why = cause?.message ? `${(error as Error).message}: ${cause.message}` : (error as Error).message;
      throw new RabbitMqConnectError(`cannot connect to RabbitMQ at ${options.server}: ${oneLine(why)}`, { cause: error });
    }
    this.connection = connection;
    // Retried once when the channel closes before the confirm: the broker may have it, so a
    // duplicate is possible (and caught by the event id); the wait as a whole stays bounded.
    this.publisher = connection.createPublisher({ confirm: true, maxAttempts: 2 });
    this.deadLetters.attach(connection, (envelope, body) => this.send(envelope, body, `store on ${envelope.routingKey}`));
    let inbox: IdempotencyStore | undefined = options.idempotencyStore;
    if (!inbox && options.idempotency === 'memory') inbox = new MemoryIdempotencyStore(options.idempotencyWindowMs);
    this.delivery = new DurableDelivery(
      this.config.retry,
      inbox,
      60_000, // unused: RabbitMQ keeps an unacknowledged delivery as long as the channel lives
      (deliveries) => `delivered ${deliveries} times without an acknowledgement (handler crashed, hung, or its connection was lost)`,
    );
  }

  /** Resolves once the broker confirmed the event; rejects when it refused it, or no confirm came within the publish timeout. */
  publish(subject: string, payload: Uint8Array, id: string, _headers?: MessageHeaders, newId = false): Promise<unknown> {
    if (this.closing || !this.publisher) {
      throw new TransportClosedError(`cannot publish to ${subject}: the RabbitMQ transport is ${this.closing ? 'closed' : 'not connected'}`);
    }
    // At most 3 UTF-8 bytes per UTF-16 unit: only a long subject needs counting.
    if (subject.length > 85 && Buffer.byteLength(subject) > 255) throw new Error(`cannot publish to ${subject}: RabbitMQ routing keys are at most 255 bytes`);
    // Only an id the bus did not make for this publish can be a re-publish (given by the caller, re-sent by the outbox).
    const given = !newId;
    const earlier = given ? this.recent.find(id) : undefined;
    if (earlier) return earlier;
    const envelope: Envelope = { exchange: this.topology.exchange, routingKey: subject, durable: true, messageId: id, contentType: CLOUDEVENTS_CONTENT_TYPE };
    if (this.archive) envelope.headers = { [Header.Time]: Date.now() };
    const send = () => this.send(envelope, asBuffer(payload), `publish to ${subject}`, given ? () => this.recent.failed(id, confirmed) : undefined);
    const confirmed: Promise<void> = this.pending.size > 0 ? this.afterPending(subject, send) : send();
    if (given) this.recent.remember(id, confirmed);
    return confirmed;
  }

  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription {
    const connection = this.openConnection(`subscribe to ${subject}`);
    const fromHistory = delivery.start !== 'new';
    if (fromHistory) {
      const start = `cannot subscribe to ${subject} with start ${delivery.start instanceof Date ? delivery.start.toISOString() : `'${delivery.start}'`}: `;
      if (!this.archive) {
        throw new Error(
          `${start}a RabbitMQ queue receives only the events routed to it once it exists, and keeps no history to start from; ` +
            "use start 'new' (the default), or keep history in the archive stream (RABBITMQ_ARCHIVE_MAX_AGE_MS, rabbitmq.archiveMaxAgeMs)",
        );
      }
      if (queue === undefined) throw new Error(`${start}on RabbitMQ only a group starts from history (a new group's queue is filled from the archive once); give it a group`);
    }
    if (queue === undefined && !delivery.ordered) return this.subscribeShared(connection, subject, handler, delivery);
    const name = queue === undefined ? this.topology.queueName('instance', this.config.instanceId, subject) : this.topology.queueName('group', queue, subject);
    const sub: QueueSubscription = {
      queue: name,
      scope: queue ?? this.instanceScope,
      target: undefined,
      inboxScope: name,
      exactPattern: exactMatchNeeded(subject) ? subject.split('.') : undefined,
      handler,
      delivery,
    };
    const inFlight = delivery.ordered ? 1 : this.options.maxInFlight;
    const queueOptions = {
      queue: name,
      durable: true,
      arguments: queue === undefined ? this.topology.instanceQueueArguments() : this.topology.groupQueueArguments(delivery.ordered),
    };
    const bindings = [
      { exchange: this.topology.exchange, queue: name, routingKey: bindingKey(subject) },
      { exchange: this.topology.retryExchange, queue: name, arguments: { 'x-match': 'all', [Header.RetryQueue]: name } },
    ];
    const consumer = connection.createConsumer(
      {
        queue: name,
        queueOptions,
        qos: { prefetchCount: inFlight },
        concurrency: inFlight,
        requeue: true,
        queueBindings: bindings,
        lazy: fromHistory,
      },
      (message) => this.handle(message, sub),
    );
    this.consumers.set(sub, consumer);
    const filled = fromHistory ? this.fillFromArchive(connection, consumer, queueOptions, bindings, subject, queue!, delivery.start as 'all' | Date) : undefined;
    const setup = this.watchSetup(consumer, `cannot consume ${subject} from queue ${name}`, () => this.consumers.delete(sub), filled);
    this.holdPublishes(setup, subject);
    return {
      unsubscribe: () => {
        if (!this.consumers.delete(sub)) return;
        const stopped = consumer.close().then(async () => {
          // A group's queue is durable and shared; an instance's own goes with its subscription.
          if (queue === undefined && !this.closing) await connection.queueDelete({ queue: name });
        });
        this.track(stopped.catch((error: Error) => this.logger.warn(`queue ${name}: ${oneLine(error.message)}`)));
      },
    };
  }

  /**
   * A group-less subscription is a binding of this instance's shared queue: cheap to add and
   * remove at run time (a WebSocket gateway's rooms), one consumer however many.
   */
  private subscribeShared(connection: Connection, subject: string, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription {
    const shared = (this.shared ??= this.createSharedQueue(connection));
    const queue = this.topology.instanceQueue(this.config.instanceId);
    const sub: QueueSubscription = {
      queue,
      scope: this.instanceScope,
      target: subject,
      inboxScope: `${queue} ${subject}`,
      exactPattern: subject.split('.'),
      handler,
      delivery,
    };
    shared.subscriptions.add(sub);
    const key = bindingKey(subject);
    const count = shared.bindings.get(key) ?? 0;
    shared.bindings.set(key, count + 1);
    const bound = count > 0 ? shared.ready : shared.ready.then(() => connection.queueBind({ exchange: this.topology.exchange, queue, routingKey: key }));
    this.track(bound);
    this.holdPublishes(bound, subject);
    return {
      unsubscribe: () => {
        if (!shared.subscriptions.delete(sub)) return;
        const left = shared.bindings.get(key)! - 1;
        if (left > 0) return void shared.bindings.set(key, left);
        shared.bindings.delete(key);
        // What the queue still holds for the pattern is acked unhandled: nothing matches it any more.
        if (!this.closing) this.track(bound.then(() => connection.queueUnbind({ exchange: this.topology.exchange, queue, routingKey: key })));
      },
    };
  }

  private createSharedQueue(connection: Connection): SharedQueue {
    const queue = this.topology.instanceQueue(this.config.instanceId);
    const inFlight = this.options.maxInFlight;
    const consumer = connection.createConsumer(
      {
        queue,
        queueOptions: { durable: true, arguments: this.topology.instanceQueueArguments() },
        qos: { prefetchCount: inFlight },
        concurrency: inFlight,
        requeue: true,
        queueBindings: [{ exchange: this.topology.retryExchange, queue, arguments: { 'x-match': 'all', [Header.RetryQueue]: queue } }],
      },
      (message) => this.dispatch(message, shared),
    );
    const shared: SharedQueue = {
      consumer,
      subscriptions: new Set(),
      bindings: new Map(),
      ready: this.watchSetup(consumer, `cannot consume from queue ${queue}`, () => (this.shared = undefined)),
    };
    // Declared again after a reconnect, the queue may be new (it expired, or the broker lost it): bound again, too.
    let first = true;
    consumer.on('ready', () => {
      if (first) return void (first = false);
      for (const key of shared.bindings.keys()) {
        connection.queueBind({ exchange: this.topology.exchange, queue, routingKey: key }).catch((error: Error) => this.logger.error(`queue ${queue}: ${oneLine(error.message)}`));
      }
    });
    return shared;
  }

  /** A message of the shared queue goes to every subscription whose pattern matches (a retry or replay only to the one it is for). */
  private dispatch(message: AsyncMessage, shared: SharedQueue): Promise<void> | undefined {
    const subject = this.subjectOf(message);
    const tokens = subject.split('.');
    const target = message.exchange !== this.topology.exchange ? message.headers?.[Header.Target] : undefined;
    let work: Promise<void>[] | undefined;
    for (const sub of shared.subscriptions) {
      if ((target !== undefined && sub.target !== target) || !subjectMatches(sub.exactPattern!, tokens)) continue;
      (work ??= []).push(this.deliver(message, sub, subject));
    }
    if (!work) return undefined;
    return work.length === 1 ? work[0] : Promise.all(work).then(() => undefined);
  }

  /**
   * Resolves once every subscription's queue is declared, bound and consumed (or cancelled), and
   * what this instance's own queue held has been handed to its handlers; rejects when a
   * subscription was refused (startup fails).
   */
  async flush(): Promise<void> {
    await Promise.all(this.setups);
    const connection = this.connection;
    if (!this.shared || !connection || this.closing) return;
    const queue = this.topology.instanceQueue(this.config.instanceId);
    for (let wait = 10; wait < 1_000; wait *= 2) {
      // Missing for a moment (the broker lost it; the consumer declares it again): nothing to wait for.
      const { messageCount } = await connection.queueDeclare({ queue, passive: true }).catch(() => ({ messageCount: 0 }));
      if (messageCount === 0) break;
      await sleep(wait);
    }
    await new Promise((resolve) => setImmediate(resolve)); // deliveries already read reach their handlers
  }

  /** Tracks a subscription's setup or teardown until it is done; flush() waits for it. */
  private track(setup: Promise<void>): void {
    this.setups.add(setup);
    setup.then(
      () => this.setups.delete(setup),
      (error: Error) => this.logger.error(error.message),
    );
  }

  /**
   * Stops consuming: the broker sends the queues' next messages to the groups' other members; handlers
   * running finish (each consumer closes its channel once they settled, which close() waits for).
   */
  async stopReceiving(): Promise<void> {
    const consumers = [...this.consumers.values(), ...(this.shared ? [this.shared.consumer] : [])];
    this.consumers.clear();
    for (const consumer of consumers) this.consumersClosing.push(consumer.close());
  }

  /** Stops consuming, lets running handlers finish (up to the shutdown timeout) and ack, waits for confirms, then closes. */
  async close(): Promise<void> {
    if (this.closing) return;
    await this.stopReceiving();
    this.closing = true;
    const connection = this.connection;
    if (!connection) return;
    const { shutdownTimeoutMs } = this.config;
    const stopped = Promise.all([...this.consumersClosing, Promise.all(this.pending.keys()).then(() => this.allConfirmed())]);
    try {
      await within(stopped, shutdownTimeoutMs, () => `after ${shutdownTimeoutMs} ms, handlers still run (their events will be redelivered) or publishes await their confirm (${this.unconfirmed})`);
      await this.publisher?.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    } catch (error) {
      this.logger.warn((error as Error).message);
      connection.unsafeDestroy();
    }
    this.health.ended();
  }

  status(): TransportStatus {
    return {
      transport: 'rabbitmq',
      ...this.health.report(),
      connected: this.health.connected && !this.closing,
      server: this.options.server,
    };
  }

  private connectionOptions(): ConnectionOptions {
    const { url, name, tls, connectTimeoutMs, reconnectDelayMs, reconnectMaxDelayMs, publishTimeoutMs } = this.options;
    const options: ConnectionOptions = {
      url,
      connectionName: name,
      connectionTimeout: connectTimeoutMs,
      retryLow: reconnectDelayMs,
      retryHigh: reconnectMaxDelayMs,
      // A publish during an outage waits this long for the connection, then rejects.
      acquireTimeout: publishTimeoutMs,
    };
    if (tls) {
      options.tls = {
        ca: tls.caFile ? readFileSync(tls.caFile) : undefined,
        cert: tls.certFile ? readFileSync(tls.certFile) : undefined,
        key: tls.keyFile ? readFileSync(tls.keyFile) : undefined,
      };
    }
    return options;
  }

  private onConnection(): void {
    this.logger.log(`${this.health.opened() ? 'reconnected' : 'connected'} to ${this.options.server}`);
    this.tiers.clear(); // the broker may have lost what was declared (its data, or a new node)
  }

  private onError(error: Error): void {
    const message = oneLine(error.message);
    this.health.failed(message);
    if (this.connection && !this.connection.ready && this.health.lost()) {
      this.logger.warn(`disconnected from ${this.options.server} (${message}); reconnecting, publishes wait up to ${this.options.publishTimeoutMs} ms`);
    } else if (!this.closing) {
      this.logger.error(`RabbitMQ: ${message}`);
    }
  }

  /** The connection, or a TransportClosedError saying what could not be done. */
  private openConnection(what: string): Connection {
    if (this.closing || !this.connection) {
      throw new TransportClosedError(`cannot ${what}: the RabbitMQ transport is ${this.closing ? 'closed' : 'not connected'}`);
    }
    return this.connection;
  }

  /**
   * Sends with a confirm, bounded by the publish timeout; a clean stop waits for it. One promise
   * and one timer per publish: this is the hot path.
   */
  private send(envelope: Envelope, body: Buffer, what: string, onFailure?: () => void): Promise<void> {
    const { publishTimeoutMs } = this.options;
    this.unconfirmed++;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (--this.unconfirmed === 0) this.drained?.();
        if (!error) return resolve();
        onFailure?.();
        reject(error);
      };
      const timer = setTimeout(
        () => settle(new PublishTimeoutError(`cannot ${what}: RabbitMQ did not confirm it within ${publishTimeoutMs} ms (${this.health.describe()})`)),
        publishTimeoutMs,
      );
      this.publisher!.send(envelope, body).then(
        () => settle(),
        (error: Error) => settle(new Error(`cannot ${what}: RabbitMQ did not confirm it (${oneLine(error.message)}; ${this.health.describe()})`, { cause: error })),
      );
    });
  }

  /** Resolves once no publish awaits its confirm. */
  private allConfirmed(): Promise<void> {
    if (this.unconfirmed === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.drained;
      this.drained = () => {
        this.drained = undefined;
        previous?.();
        resolve();
      };
    });
  }

  /**
   * A new group that starts from history: its queue is declared and bound, then filled from the
   * archive, and only then consumed (by this member: others that start meanwhile consume at once).
   * An existing queue keeps its position.
   */
  private async fillFromArchive(
    connection: Connection,
    consumer: Consumer,
    queueOptions: MethodParams[Cmd.QueueDeclare],
    bindings: MethodParams[Cmd.QueueBind][],
    subject: string,
    group: string,
    start: 'all' | Date,
  ): Promise<void> {
    const queue = queueOptions.queue!;
    if (!(await queueExists(connection, queue))) {
      await connection.queueDeclare(queueOptions);
      for (const binding of bindings) await connection.queueBind(binding);
      const copied = await this.archive!.copyInto(connection, (envelope, body) => this.send(envelope, body, `copy history into ${queue}`), queue, subject, start);
      this.logger.log(`group ${group}: ${copied} archived events of ${subject} copied into its new queue ${queue}`);
    }
    consumer.start();
  }

  /** A consumer's first setup (after `before`, when given), tracked for flush(); one the broker refuses is given up (`giveUp`) and its error reported. */
  private watchSetup(consumer: Consumer, what: string, giveUp: () => void, before?: Promise<void>): Promise<void> {
    const setup = new Promise<void>((resolve, reject) => {
      before?.catch((error: Error) => {
        giveUp();
        void consumer.close();
        reject(new Error(`${what}: ${oneLine(error.message)}`, { cause: error }));
      });
      consumer.once('ready', resolve);
      consumer.on('error', (error: Error & { code?: string }) => {
        const message = oneLine(error.message);
        this.health.failed(message);
        if (error.code && PERMANENT.has(error.code)) {
          giveUp();
          void consumer.close();
          reject(new Error(`${what}: ${error.message}` + (error.code === 'PRECONDITION_FAILED' ? ' (the queue exists with other arguments: its type, or ordered; delete it to change them)' : '')));
        } else if (!this.closing) this.logger.error(`${consumer.queue || what}: ${message}`);
      });
    });
    this.track(setup);
    return setup;
  }

  /** Publishes the pattern matches wait until the subscription is set up (or given up), for at most the publish timeout. */
  private holdPublishes(setup: Promise<void>, pattern: string): void {
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.publishTimeoutMs);
      setup.then(resolve, resolve);
    });
    this.pending.set(bounded, pattern.split('.'));
    void bounded.then(() => {
      clearTimeout(timer);
      this.pending.delete(bounded);
    });
  }

  /** Sends once the subscriptions being set up that match the subject are; at once when none does. */
  private afterPending(subject: string, send: () => Promise<void>): Promise<void> {
    const tokens = subject.split('.');
    const waits = [...this.pending].filter(([, pattern]) => subjectMatches(pattern, tokens)).map(([setup]) => setup);
    return waits.length === 0 ? send() : Promise.all(waits).then(send);
  }

  /** The subject of a delivery: a copy (a retry, a replay) arrives through another exchange, with the subject in a header. */
  private subjectOf(message: AsyncMessage): string {
    const subject = message.headers?.[Header.Subject];
    return message.exchange !== this.topology.exchange && typeof subject === 'string' ? oneLine(subject, 255) : message.routingKey;
  }

  private handle(message: AsyncMessage, sub: QueueSubscription): Promise<void> | undefined {
    const subject = this.subjectOf(message);
    if (sub.exactPattern && !subjectMatches(sub.exactPattern, subject.split('.'))) return undefined; // not ours: `#` also matches no word
    return this.deliver(message, sub, subject);
  }

  private deliver(message: AsyncMessage, sub: QueueSubscription, subject: string): Promise<void> {
    const h = message.headers;
    const body = bodyOf(message);
    const earlier = message.exchange !== this.topology.exchange ? count(h?.[Header.Attempts]) : 0;
    const delivered = earlier + Math.max(count(h?.['x-delivery-count']), message.redelivered ? 1 : 0) + 1;
    const durable: DurableMessage = {
      eventId: message.messageId || undefined,
      deliveryCount: delivered,
      ack: () => undefined, // the consumer acks when the delivery resolves
      retryLater: (delayMs) => this.retryLater(message, body, subject, sub, delivered, delayMs),
      deadLetter: (attempts, error) => this.deadLetter(message, body, subject, sub, attempts, error),
    };
    return this.delivery.deliver(durable, sub.inboxScope, sub.delivery, (attempt) => sub.handler(subject, body, attempt, undefined));
  }

  /** A copy waits in the retry queue of its delay and comes back to this queue; the original is then acked. */
  private async retryLater(message: AsyncMessage, body: Buffer, subject: string, sub: QueueSubscription, failed: number, delayMs: number): Promise<void> {
    const tierMs = retryTierMs(delayMs);
    const tier = this.topology.retryTierQueue(tierMs);
    try {
      let declared = this.tiers.get(tierMs);
      if (!declared) {
        declared = this.openConnection(`declare ${tier}`).queueDeclare({ queue: tier, durable: true, arguments: this.topology.retryTierArguments(tierMs) });
        this.tiers.set(tierMs, declared);
        declared.catch(() => this.tiers.delete(tierMs));
      }
      await declared;
      const headers = { [Header.RetryQueue]: sub.queue, [Header.Attempts]: failed, [Header.Subject]: subject, ...(sub.target === undefined ? {} : { [Header.Target]: sub.target }) };
      await this.send({ routingKey: tier, durable: true, messageId: message.messageId, contentType: message.contentType, headers }, body, `schedule a retry in ${tier}`);
    } catch (error) {
      // Redelivered at once when it cannot wait in the retry queue: after the delay here, then.
      this.logger.error(`could not schedule a retry of a message on ${subject}: ${(error as Error).message}; it will be redelivered`);
      await sleep(delayMs);
      throw error;
    }
  }

  /** Stores the event with why it failed, then acks it; if it cannot be stored, it is redelivered instead. */
  private async deadLetter(message: AsyncMessage, body: Buffer, subject: string, sub: QueueSubscription, attempts: number, error: Error): Promise<void> {
    const eventId = message.messageId || undefined;
    try {
      await this.deadLetters.store({ body, contentType: message.contentType, eventId, queue: sub.queue, target: sub.target, scope: sub.scope, subject, attempts, error });
    } catch (storeError) {
      this.logger.error(`could not dead-letter a message on ${subject}: ${(storeError as Error).message}; it will be redelivered`);
      await sleep(this.config.retry.delayMs(attempts));
      throw storeError;
    }
    this.logger.error(`dead-lettered ${oneLine(eventId ?? '', 256)} on ${subject} for ${sub.scope} after ${attempts} attempts: ${error.message}`, error.stack);
  }
}

export const rabbitMqTransport: TransportFactory = (context) =>
  new RabbitMqTransport({
    instanceId: context.instanceId,
    rabbitmq: resolveRabbitMqOptions(context.section<RabbitMqOptions>('rabbitmq'), context.env, context.instanceId),
    retry: context.retry,
    shutdownTimeoutMs: context.shutdownTimeoutMs,
  });
