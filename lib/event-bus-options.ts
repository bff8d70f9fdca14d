import type { FactoryProvider, ModuleMetadata, Type } from '@nestjs/common';
import type { RetryOptions } from './delivery/retry-policy.js';
import type { EventTransport } from './transport/event-transport.js';
import type { JetStreamOptions } from './transport/jetstream/jetstream-options.js';
import type { MemoryOptions } from './transport/memory/memory-options.js';
import type { NatsOptions } from './transport/nats/nats-options.js';
import type { RabbitMqOptions } from './transport/rabbitmq/rabbitmq-options.js';
import type { TransportFactory } from './transport/transport-context.js';

/** The transports this package brings; `registerTransport()` adds others by name. */
export type TransportName = 'memory' | 'nats' | 'jetstream' | 'rabbitmq';

export interface EventBusModuleOptions {
  /**
   * `memory` (default: one process), `nats` (core NATS: broadcast, at most once), `jetstream`
   * or `rabbitmq` (durable, at least once), the name of a registered transport, or your own transport (a
   * factory given the module's settings, or an instance).
   */
  transport?: TransportName | (string & {}) | TransportFactory | EventTransport;
  /** First tokens of every subject; events go to `<prefix>.<type>[.<key>]`. */
  subjectPrefix?: string;
  /** This instance's id, carried as the `origin` of what it publishes. Unique per process. */
  instanceId?: string;
  /** CloudEvents `source` of the events this instance publishes. */
  source?: string;
  memory?: MemoryOptions;
  nats?: NatsOptions;
  jetstream?: JetStreamOptions;
  rabbitmq?: RabbitMqOptions;
  /** Retries of failing handlers on durable transports. */
  retry?: RetryOptions;
}

export interface EventBusOptionsFactory {
  createEventBusOptions(): EventBusModuleOptions | Promise<EventBusModuleOptions>;
}

export interface EventBusModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => EventBusModuleOptions | Promise<EventBusModuleOptions>;
  inject?: FactoryProvider['inject'];
  useClass?: Type<EventBusOptionsFactory>;
  useExisting?: Type<EventBusOptionsFactory>;
}
