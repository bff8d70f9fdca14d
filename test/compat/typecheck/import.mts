// An ES module beside require.ts: resolves the package's `import` condition, the dist/esm declarations.
import { DomainEventBus, EventBusModule, JetStreamTransport, KvIdempotencyStore, NatsTransport, type EventBusModuleOptions } from 'nestjs-domain-events';

const options: EventBusModuleOptions = { transport: 'jetstream', nats: { servers: 'nats://127.0.0.1:4222' } };
export const used = [EventBusModule.forRoot(options), DomainEventBus, NatsTransport, JetStreamTransport, KvIdempotencyStore];
