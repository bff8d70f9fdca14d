// Compiled by run.mjs inside the CommonJS app (no "type": "module"), so this file is CommonJS and resolves
// the package's `require` condition: the dist/cjs declarations, with skipLibCheck off.
import { DomainEventBus, EventBusModule, JetStreamTransport, KvIdempotencyStore, NatsTransport, type EventBusModuleOptions } from 'nestjs-domain-events';

const options: EventBusModuleOptions = { transport: 'jetstream', nats: { servers: 'nats://127.0.0.1:4222' } };
export const used = [EventBusModule.forRoot(options), DomainEventBus, NatsTransport, JetStreamTransport, KvIdempotencyStore];
