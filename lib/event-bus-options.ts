import type { FactoryProvider, ModuleMetadata, Type } from '@nestjs/common';
import type { CloudEventsOptions } from './codec/codec-options.js';
import type { RetryOptions } from './delivery/retry-policy.js';
import type { OutboxOptions } from './outbox/outbox-options.js';
import type { EventTransport } from './transport/event-transport.js';
import type { JetStreamOptions } from './transport/jetstream/jetstream-options.js';
import type { MemoryOptions } from './transport/memory/memory-options.js';
import type { NatsOptions } from './transport/nats/nats-options.js';
import type { RabbitMqOptions } from './transport/rabbitmq/rabbitmq-options.js';
import type { RedisOptions } from './transport/redis/redis-options.js';
import type { TransportFactory } from './transport/transport-context.js';

/** The transports this package brings; `registerTransport()` adds others by name. */
export type TransportName = 'memory' | 'nats' | 'jetstream' | 'redis' | 'rabbitmq';

export interface EventBusModuleOptions {
  /**
   * `memory` (default: one process), `nats` (core NATS: broadcast, at most once), `jetstream`
   * (durable, at least once), `redis` (Redis Streams) or `rabbitmq` (both durable, at least once), the name of a registered transport, or your own transport (a
   * factory given the module's settings, or an instance).
   */
  transport?: TransportName | (string & {}) | TransportFactory | EventTransport;
  /** First tokens of every subject; events go to `<prefix>.<type>[.<key>]`. */
  subjectPrefix?: string;
  /** This instance's id, carried as the `origin` of what it publishes. Unique per process. */
  instanceId?: string;
  /** CloudEvents `source` of the events this instance publishes: a URI-reference such as `/billing`. */
  source?: string;
  /** How events are published: CloudEvents structured (default) or binary mode. Both are always read. */
  cloudEvents?: CloudEventsOptions;
  /** The largest message published or accepted, in bytes (default 1 MiB, nats-server's default max_payload). */
  maxMessageBytes?: number;
  memory?: MemoryOptions;
  nats?: NatsOptions;
  jetstream?: JetStreamOptions;
  redis?: RedisOptions;
  rabbitmq?: RabbitMqOptions;
  /** Retries of failing handlers on durable transports. */
  retry?: RetryOptions;
  /** How long shutdown waits for running handlers and unacknowledged publishes before closing. */
  shutdownTimeoutMs?: number;
  /**
   * Whether what a handler publishes is caused by the event it handles (`causationId`, and its
   * `correlationId` continued), through an AsyncLocalStorage around every delivery. Default true;
   * false saves that cost per delivery, and every publish then starts a flow of its own.
   */
  causation?: boolean;
  /** The transactional outbox on PostgreSQL (also configured by EVENT_BUS_OUTBOX_URL alone). */
  outbox?: OutboxOptions;
}

/** How the module is registered: given to forRoot() or forRootAsync() itself, never by an options factory. */
export interface EventBusModuleRegistration {
  /**
   * Global (the default): DomainEventBus and DeadLetters can be injected anywhere. With false, only
   * in modules that import EventBusModule (or a module that re-exports it).
   */
  global?: boolean;
}

export interface EventBusOptionsFactory {
  createEventBusOptions(): EventBusModuleOptions | Promise<EventBusModuleOptions>;
}

export interface EventBusModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'>, EventBusModuleRegistration {
  useFactory?: (...args: any[]) => EventBusModuleOptions | Promise<EventBusModuleOptions>;
  inject?: FactoryProvider['inject'];
  useClass?: Type<EventBusOptionsFactory>;
  useExisting?: Type<EventBusOptionsFactory>;
}
