export { EventBusModule } from './event-bus.module.js';
export { DeadLetters } from './dead-letters.js';
export type {
  EventBusModuleAsyncOptions,
  EventBusModuleOptions,
  EventBusOptionsFactory,
  JetStreamOptions,
  MemoryOptions,
  RetryOptions,
  NatsOptions,
  NatsTlsOptions,
  TransportName,
} from './event-bus-options.js';
export {
  DomainEventBus,
  UnregisteredEventError,
  type DomainEventHandler,
  type EventBusStatus,
  type EventSubscription,
  type PublishOptions,
  type SubscribeOptions,
} from './domain-event-bus.js';
export type { EventBusStats } from './event-bus-stats.js';
export { EventContext } from './event-context.js';
export { DomainEvent } from './domain-event.decorator.js';
export { ValueObject } from './value-object.decorator.js';
export { OnDomainEvent } from './on-domain-event.decorator.js';
export type { EventPattern } from './event-route.js';
export { EventRegistrationError, eventRegistry, type DomainEventOptions } from './event-registry.js';
export { DecodeError, EncodeError, EventCodec } from './event-codec.js';
export { EventBusConfigError, resolveEventBusOptions, type ResolvedEventBusOptions } from './resolve-options.js';
export { KvIdempotencyStore, MemoryIdempotencyStore, type IdempotencyStore } from './idempotency-store.js';
export { retryDelayMs } from './retry-backoff.js';
export { EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
export { MemoryBroker } from './transport/memory-broker.js';
export { MemoryTransport } from './transport/memory.transport.js';
export { NatsConnectError, NatsTransport } from './transport/nats.transport.js';
export { JetStreamTransport, type DeadLetter } from './transport/jetstream.transport.js';
export { StreamConflictError } from './transport/jetstream-streams.js';
export {
  TransportClosedError,
  type DeliveryOptions,
  type EventTransport,
  type StartPosition,
  type LocalEnvelope,
  type TransportMessageHandler,
  type TransportPayload,
  type TransportStatus,
  type TransportSubscription,
} from './transport/event-transport.js';
