import { Logger } from '@nestjs/common';
import { consumerName } from '../../delivery/consumer-name.js';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { DurableDelivery } from '../../delivery/durable-delivery.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RetryPolicy } from '../../delivery/retry-policy.js';
import { settlesWithin } from '../../deferred.js';
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
import { RedisAppender } from './redis-appender.js';
import { createRedisClient, loadRedis, type RedisClient } from './redis-client.js';
import { RedisDeadLetters } from './redis-dead-letters.js';
import { GroupReader, type ReaderContext } from './redis-group-reader.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';
import { RedisKeys } from './redis-keys.js';
import { redactedUrl, resolveRedisOptions, type RedisOptions, type ResolvedRedisOptions } from './redis-options.js';

export class RedisConnectError extends Error {
  override readonly name = 'RedisConnectError';
}

/** What a Redis transport is made of. */
export interface RedisSettings {
  readonly subjectPrefix: string;
  readonly instanceId: string;
  readonly redis: ResolvedRedisOptions;
  readonly retry: RetryPolicy;
  /** How long close() waits for running handlers and publishes awaiting Redis. */
  readonly shutdownTimeoutMs: number;
  /** How the client package is loaded (tests replace it to see the message when it is missing). */
  readonly loadClient?: () => Promise<unknown>;
}

/** A publish awaiting Redis's reply, rejected when its deadline passes first. */
interface PendingPublish {
  readonly deadline: number;
  readonly subject: string;
  reject(error: Error): void;
}

const ignore = () => undefined;

/**
 * Redis Streams: durable, at-least-once. Every event is appended (XADD) to one stream with its
 * subject, id and body; each subscription is a consumer group that reads the whole stream and
 * skips other subjects, a group-less one a group per instance. Handlers are acked (XACK) after they
 * succeed; failures stay pending and are claimed again after a backoff, then dead-lettered. Members
 * refresh a heartbeat; what a member whose heartbeat expired left pending is claimed by the others.
 */
export class RedisTransport implements EventTransport {
  readonly encodes = true;
  readonly redelivers = true;
  readonly deadLetters: RedisDeadLetters;
  private readonly logger = new Logger('EventBus:Redis');
  private readonly keys: RedisKeys;
  private readonly options: ResolvedRedisOptions;
  private readonly instanceScope: string;
  /** XADD's arguments before an entry's fields: trimming, and `*` for a new id. */
  private readonly head: string[];
  private client?: RedisClient;
  /** Appends with the duplicate window (absent when it is off: a plain XADD each). */
  private appender?: RedisAppender;
  /** The same connection, replies as Buffers: what readers and scripts use. */
  private commands?: RedisClient;
  private bufferMapping: Record<number, unknown> = {};
  private delivery!: DurableDelivery;
  /** By group name. */
  private readonly readers = new Map<string, GroupReader>();
  private readonly started = new WeakMap<GroupReader, Promise<void>>();
  private readonly connections = new Set<RedisClient>();
  private readonly setups = new Set<Promise<unknown>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Publishes awaiting Redis, in publish order (so oldest first). */
  private readonly publishes = new Map<PendingPublish, Promise<unknown>>();
  private timers: NodeJS.Timeout[] = [];
  private lastCleanup = 0;
  private closing = false;
  private readonly health = new ConnectionHealth();

  constructor(private readonly settings: RedisSettings) {
    this.options = settings.redis;
    this.keys = new RedisKeys(this.options.stream);
    this.deadLetters = new RedisDeadLetters(this.keys);
    this.instanceScope = `instance-${settings.instanceId}`;
    this.head = [...(this.options.maxMessages > 0 ? ['MAXLEN', '~', String(this.options.maxMessages)] : []), '*'];
  }

  async connect(): Promise<void> {
    const redis = await loadRedis(this.settings.loadClient);
    const client = createRedisClient(redis, this.options, this.settings.instanceId);
    this.watch(client);
    const url = redactedUrl(this.options.url);
    try {
      if (!(await settlesWithin(client.connect(), this.options.connectTimeoutMs))) throw new Error(this.health.lastError ?? `no answer within ${this.options.connectTimeoutMs} ms`);
    } catch (error) {
      client.destroy();
      throw new RedisConnectError(`cannot connect to Redis at ${url}: ${this.health.lastError ?? (error as Error).message}`, { cause: error });
    }
    this.logger.log(`connected to ${url}`);
    this.client = client;
    this.bufferMapping = { [redis.RESP_TYPES.BLOB_STRING]: Buffer };
    this.commands = client.withTypeMapping(this.bufferMapping);
    this.appender = new RedisAppender(client, this.keys, this.options.duplicateWindowMs, this.head);
    this.deadLetters.attach(client);
    const options = this.options;
    let inbox: IdempotencyStore | undefined = options.idempotencyStore;
    if (!inbox && options.idempotency === 'redis') inbox = new RedisIdempotencyStore(client, this.keys, options.idempotencyWindowMs);
    if (!inbox && options.idempotency === 'memory') inbox = new MemoryIdempotencyStore(options.idempotencyWindowMs);
    this.delivery = new DurableDelivery(
      this.settings.retry,
      inbox,
      options.claimAfterMs,
      (deliveries) => `not acknowledged on ${deliveries} deliveries (the member handling it stopped, or its handler hung)`,
    );
    await this.beat();
    this.timers = [
      setInterval(() => void this.beat().catch(ignore), Math.max(100, Math.floor(options.claimAfterMs / 3))),
      setInterval(this.expirePublishes, Math.min(250, Math.max(10, Math.floor(options.publishTimeoutMs / 4)))),
    ];
  }

  /** Resolves once Redis stored the event (a duplicate id within the window counts as stored); rejects when it did not confirm within the publish timeout (it may still store it). */
  publish(subject: string, payload: Uint8Array, id: string, _headers?: MessageHeaders, newId = false): Promise<unknown> {
    this.open(`publish to ${subject}`);
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return this.confirmed(this.appender!.append(subject, id, body, newId), subject);
  }

  /**
   * A named group gets a consumer group per subject (as on JetStream). This instance's group-less
   * subscriptions that start with new events share one group (per attempts), so that each event is
   * read once per instance however many rooms it follows; others get one of their own.
   */
  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription {
    const client = this.open(`subscribe to ${subject}`);
    const scope = queue ?? this.instanceScope;
    const shared = !queue && delivery.start === 'new' && !delivery.ordered;
    const name = shared ? `${this.instanceScope}__shared_a${delivery.attempts}` : consumerName(scope, subject);
    const member = { subject, handler };
    let reader = this.readers.get(name);
    if (reader) reader.add(member);
    else {
      reader = new GroupReader(this.readerContext(), { name, scope, delivery });
      reader.add(member);
      this.readers.set(name, reader);
      // Started at once: the group is created before anything this instance publishes next, so that 'new' includes it.
      const started = reader.start();
      this.started.set(reader, started);
      // A group-less subscription's group is this instance's: registered, so that it is removed once the instance is gone for good.
      this.setUp(queue ? started : Promise.all([started, client.sendCommand(['HSET', this.keys.broadcastGroups, name, this.settings.instanceId])]));
    }
    const owner = reader;
    let subscribed = true;
    return {
      unsubscribe: () => {
        // The shared group stays (it may have members again at once); other groups go with their last member.
        if (!subscribed) return;
        subscribed = false;
        if (!owner.remove(member) || shared) return;
        this.readers.delete(name);
        void this.started
          .get(owner)!
          .then(() => owner.stop())
          .then(() => (queue ? undefined : this.removeGroup(name)))
          .catch((error: Error) => this.logger.warn(`unsubscribing ${name}: ${error.message}`));
      },
    };
  }

  /** Resolves once every group is created and read, and Redis answered every command sent so far. */
  async flush(): Promise<void> {
    await Promise.all(this.setups);
    await this.client?.sendCommand(['PING']);
  }

  /** Stops reading: what comes next goes to the groups' other members; running handlers finish, publishing goes on. */
  async stopReceiving(): Promise<void> {
    await Promise.all([...this.readers.values()].map((reader) => reader.stop()));
  }

  /** Stops reading, lets running handlers finish and ack (up to the shutdown timeout), then closes. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    const client = this.client;
    if (!client) return;
    await this.stopReceiving();
    const { shutdownTimeoutMs } = this.settings;
    const settled = Promise.all([...this.inFlight, ...[...this.publishes.values()].map((p) => p.catch(ignore))]);
    if (!(await settlesWithin(settled, shutdownTimeoutMs))) {
      this.logger.warn(
        `after ${shutdownTimeoutMs} ms, ${this.inFlight.size} handlers still run (their events will be claimed by other members or after a restart) ` +
          `and ${this.publishes.size} publishes await Redis`,
      );
    }
    // Gone at once rather than after the claim time: the other members claim what is left.
    await settlesWithin(client.sendCommand(['DEL', this.keys.alivePrefix + this.settings.instanceId]).catch(ignore), 1_000);
    for (const connection of this.connections) connection.destroy();
    if (!(await settlesWithin(client.close().catch(ignore), 2_000))) client.destroy();
    this.health.ended();
  }

  /** Drops every connection at once: no acks, no goodbye (what a crash leaves behind; for tests of what the others do then). */
  abort(): void {
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const reader of this.readers.values()) void reader.stop();
    for (const connection of this.connections) connection.destroy();
    this.client?.destroy();
    this.health.ended();
  }

  status(): TransportStatus {
    const url = new URL(this.options.url);
    return {
      transport: 'redis',
      ...this.health.report(),
      server: `${url.hostname}:${url.port || 6379}`,
    };
  }

  private open(what: string): RedisClient {
    if (!this.client || this.closing) throw new TransportClosedError(`cannot ${what}: the Redis transport is ${this.client ? 'closed' : 'not connected'}`);
    return this.client;
  }

  private confirmed(reply: Promise<unknown>, subject: string): Promise<unknown> {
    const pending: PendingPublish = { deadline: Date.now() + this.options.publishTimeoutMs, subject, reject: ignore };
    const settled = new Promise((resolve, reject) => {
      pending.reject = reject;
      reply.then(
        (stored) => {
          this.publishes.delete(pending);
          resolve(stored);
        },
        (error: Error) => {
          this.publishes.delete(pending);
          reject(new Error(`could not publish to ${subject}: ${error.message}`, { cause: error }));
        },
      );
    });
    this.publishes.set(pending, settled);
    return settled;
  }

  /** Rejects the publishes Redis has not confirmed by their deadline (oldest first: the set is in publish order). */
  private readonly expirePublishes = (): void => {
    const now = Date.now();
    for (const pending of this.publishes.keys()) {
      if (pending.deadline > now) break;
      this.publishes.delete(pending);
      pending.reject(
        new PublishTimeoutError(
          `Redis did not confirm the publish to ${pending.subject} within ${this.options.publishTimeoutMs} ms (${this.health.describe()}); ` +
            'it may still be stored: publishing again with the same event id is handled once',
        ),
      );
    }
  };

  private readerContext(): ReaderContext {
    return {
      keys: this.keys,
      consumer: this.settings.instanceId,
      commands: this.commands!,
      delivery: this.delivery,
      deadLetters: this.deadLetters,
      claimAfterMs: this.options.claimAfterMs,
      maxInFlight: this.options.maxInFlight,
      logger: this.logger,
      openConnection: async () => {
        const connection = this.client!.duplicate();
        connection.on('error', (error: Error) => this.health.failed(error.message));
        this.connections.add(connection);
        await connection.connect();
        return connection.withTypeMapping(this.bufferMapping);
      },
      track: (work) => {
        // Never rejects (the reader logs failures): one reaction rather than finally()'s two.
        this.inFlight.add(work);
        void work.then(() => this.inFlight.delete(work));
      },
    };
  }

  /** Tracks a group being created until it is read; a failure nobody flushes for is still logged. */
  private setUp(setup: Promise<unknown>): void {
    this.setups.add(setup);
    setup.then(
      () => this.setups.delete(setup),
      (error: Error) => this.logger.error(`could not create a consumer group: ${error.message}`, error.stack),
    );
  }

  /** Refreshes this instance's heartbeat; trims the stream by age; removes the groups of instances gone for good. */
  private async beat(): Promise<void> {
    const client = this.client!;
    const now = Date.now();
    const { claimAfterMs, maxAgeMs, broadcastInactiveMs } = this.options;
    await Promise.all([
      client.sendCommand(['SET', this.keys.alivePrefix + this.settings.instanceId, '1', 'PX', String(claimAfterMs)]),
      client.sendCommand(['HSET', this.keys.lastSeen, this.settings.instanceId, String(now)]),
      maxAgeMs > 0 ? client.sendCommand(['XTRIM', this.keys.stream, 'MINID', '~', `${now - maxAgeMs}-0`]) : undefined,
    ]);
    if (now - this.lastCleanup < Math.min(60_000, broadcastInactiveMs / 2)) return;
    this.lastCleanup = now;
    const owners = (await client.sendCommand(['HGETALL', this.keys.broadcastGroups])) as string[];
    for (let i = 0; i + 1 < owners.length; i += 2) {
      const [group, instance] = [owners[i], owners[i + 1]];
      const seen = Number(await client.sendCommand(['HGET', this.keys.lastSeen, instance]));
      if (instance !== this.settings.instanceId && !(now - seen < broadcastInactiveMs)) {
        this.logger.log(`removing ${group}: its instance ${instance} has been gone for over ${broadcastInactiveMs} ms`);
        await this.removeGroup(group);
      }
    }
  }

  /** Removes a group-less subscription's group, its replays and its retry schedules. */
  private async removeGroup(group: string): Promise<void> {
    const client = this.client!;
    const replay = this.keys.replay(group);
    await client.sendCommand(['XGROUP', 'DESTROY', this.keys.stream, group]);
    await client.sendCommand(['DEL', replay, this.keys.retries(this.keys.stream, group), this.keys.retries(replay, group)]);
    await client.sendCommand(['HDEL', this.keys.broadcastGroups, group]);
  }

  private watch(client: RedisClient): void {
    client.on('ready', () => {
      if (!this.health.opened()) return;
      this.logger.log(`reconnected to ${redactedUrl(this.options.url)}`);
      // Acks may have been lost with the connection: what is still pending here is claimed again.
      for (const reader of this.readers.values()) reader.reconnected();
    });
    client.on('error', (error: Error) => {
      const message = error.message || error.name;
      this.health.failed(message);
      if (this.health.lost()) this.logger.warn(`disconnected from Redis (${message}); reconnecting (publishes wait up to ${this.options.publishTimeoutMs} ms)`);
    });
    client.on('end', () => this.health.ended());
  }
}

export const redisTransport: TransportFactory = (context) =>
  new RedisTransport({
    subjectPrefix: context.subjectPrefix,
    instanceId: context.instanceId,
    redis: resolveRedisOptions(context.section<RedisOptions>('redis'), context.env),
    retry: context.retry,
    shutdownTimeoutMs: context.shutdownTimeoutMs,
  });
