export { EventBusModule } from './event-bus.module.js';
export { DeadLetters } from './dead-letters.js';
export type { EventBusModuleAsyncOptions, EventBusModuleOptions, EventBusOptionsFactory, TransportName } from './event-bus-options.js';
export {
  DomainEventBus,
  UnregisteredEventError,
  type EventBusStatus,
  type PublishOptions,
} from './domain-event-bus.js';
export type { DomainEventHandler, EventSubscription, SubscribeOptions } from './listener-sets.js';
export type { EventBusStats } from './event-bus-stats.js';
export { EventContext } from './event-context.js';
export { DomainEvent } from './registry/domain-event.decorator.js';
export { ValueObject } from './registry/value-object.decorator.js';
export { OnDomainEvent } from './on-domain-event.decorator.js';
export type { EventPattern } from './event-route.js';
export { EventRegistrationError, eventRegistry, type DomainEventOptions } from './registry/event-registry.js';
export { DecodeError, EncodeError, EventCodec } from './codec/event-codec.js';
export { EventBusConfigError } from './config/settings.js';
export { resolveEventBusOptions, type ResolvedEventBusOptions } from './resolve-options.js';
export { MemoryIdempotencyStore, type IdempotencyStore } from './delivery/idempotency-store.js';
export { RetryPolicy, type RetryDecision, type RetryOptions } from './delivery/retry-policy.js';
export {
  DurableDelivery,
  HandlerTimeoutError,
  type AttemptRunner,
  type DeliveryStatus,
  type DurableMessage,
  type SlowHandler,
} from './delivery/durable-delivery.js';
export type { DeliveryOptions, StartPosition } from './delivery/delivery-options.js';
export type { DeadLetter, DeadLetterPage, DeadLetterQuery, DeadLetterStore } from './delivery/dead-letter-store.js';
export { EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
export {
  TransportClosedError,
  type EventTransport,
  type LocalEnvelope,
  type TransportMessageHandler,
  type TransportPayload,
  type TransportStatus,
  type TransportSubscription,
} from './transport/event-transport.js';
export type { TransportContext, TransportFactory } from './transport/transport-context.js';
export { registerTransport } from './transport/transport-registry.js';
export { MemoryBroker } from './transport/memory/memory-broker.js';
export { MemoryTransport } from './transport/memory/memory.transport.js';
export type { MemoryOptions } from './transport/memory/memory-options.js';
export { NatsConnectError, NatsTransport } from './transport/nats/nats.transport.js';
export type { NatsOptions, NatsTlsOptions } from './transport/nats/nats-options.js';
export { JetStreamTransport, type JetStreamTransportStatus } from './transport/jetstream/jetstream.transport.js';
export { PublishTimeoutError } from './transport/jetstream/jetstream-publisher.js';
export type { JetStreamOptions } from './transport/jetstream/jetstream-options.js';
export { KvIdempotencyStore } from './transport/jetstream/kv-idempotency-store.js';
export { StreamConflictError } from './transport/jetstream/jetstream-streams.js';
