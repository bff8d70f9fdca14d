export { EventBusModule } from './event-bus.module.js';
export { DeadLetters } from './dead-letters.js';
export type { EventBusModuleAsyncOptions, EventBusModuleOptions, EventBusModuleRegistration, EventBusOptionsFactory, TransportName } from './event-bus-options.js';
export {
  DomainEventBus,
  UnregisteredEventError,
  type EventBusInspection,
  type EventBusState,
  type EventBusStatus,
  type OutboxStatus,
  type PublishOptions,
} from './domain-event-bus.js';
export { currentEventContext } from './observability/handling-context.js';
export type { HandlerStatus, TypeStatus } from './observability/bus-statistics.js';
export { EventBusHealthIndicator, type EventBusHealthOptions, type EventBusHealthResult } from './event-bus-health.indicator.js';
export type { DomainEventHandler, EventSubscription, SubscribeOptions } from './listener-sets.js';
export type { EventBusStats } from './event-bus-stats.js';
export { EventContext } from './event-context.js';
export { DomainEvent } from './registry/domain-event.decorator.js';
export { ValueObject } from './registry/value-object.decorator.js';
export { OnDomainEvent } from './on-domain-event.decorator.js';
export { DOMAIN_EVENT_CONTEXT, type DomainEventContextType, type DomainEventRequest } from './domain-event-context-creator.js';
export type { EventPattern } from './event-route.js';
export { EventRegistrationError, eventRegistry, type DomainEventOptions } from './registry/event-registry.js';
export { DecodeError, EncodeError, type DecodeFailure } from './codec/codec-errors.js';
export { EventCodec, type BinaryMessage, type CodecSettings, type DecodedEvent } from './codec/event-codec.js';
export type { CloudEventsMode, CloudEventsOptions } from './codec/codec-options.js';
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
export type { EnvelopeExtensions } from './codec/envelope-extensions.js';
export {
  PublishTimeoutError,
  TransportClosedError,
  type ConsumerStatus,
  type EventTransport,
  type TransportInspection,
  type LocalEnvelope,
  type MessageHeaders,
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
export { PublishBufferFullError, type PublishConfirm } from './transport/nats/publish-buffer.js';
export type { NatsOptions, NatsTlsOptions } from './transport/nats/nats-options.js';
export { JetStreamTransport, type JetStreamTransportStatus } from './transport/jetstream/jetstream.transport.js';
export type { JetStreamOptions } from './transport/jetstream/jetstream-options.js';
export { KvIdempotencyStore } from './transport/jetstream/kv-idempotency-store.js';
export { StreamConflictError } from './transport/jetstream/jetstream-streams.js';
export { RedisConnectError, RedisTransport } from './transport/redis/redis.transport.js';
export { RedisClientMissingError } from './transport/redis/redis-client.js';
export type { RedisOptions, RedisTlsOptions } from './transport/redis/redis-options.js';
export { EventBusTestingModule } from './testing/event-bus-testing.module.js';
export { EventBusTester, type HandledEvent, type HandledTarget, type PublishedEvent } from './testing/event-bus-tester.js';
export { EventOutbox, OutboxNotConfiguredError, type OutboxLag } from './outbox/event-outbox.js';
export type { OutboxOptions, OutsideTransaction } from './outbox/outbox-options.js';
export { OutboxTable, type OutboxTableName } from './outbox/outbox-table.js';
export { NotATransactionError, type OutboxTransaction } from './outbox/outbox-transaction.js';
export { OutsideTransactionError } from './outbox/cls-transactions.js';
export type { OutboxPool } from './outbox/pg-types.js';
export { RabbitMqTransport } from './transport/rabbitmq/rabbitmq.transport.js';
export { RabbitMqConnectError } from './transport/rabbitmq/rabbitmq-connect-error.js';
export type { RabbitMqOptions, RabbitMqTlsOptions } from './transport/rabbitmq/rabbitmq-options.js';
