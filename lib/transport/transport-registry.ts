import { tokenProblem } from '../routing/subject-token.js';
import type { TransportFactory } from './transport-context.js';
import { jetStreamTransport } from './jetstream/jetstream.transport.js';
import { memoryTransport } from './memory/memory.transport.js';
import { natsTransport } from './nats/nats.transport.js';
import { redisTransport } from './redis/redis.transport.js';
import { rabbitMqTransport } from './rabbitmq/rabbitmq.transport.js';

/** Transports by the name `EVENT_BUS_TRANSPORT` / `forRoot({ transport })` selects them with; shared by every copy of the package. */
const factories: Map<string, TransportFactory> = ((globalThis as Record<symbol, unknown>)[Symbol.for('nestjs-domain-events.transports')] ??= new Map([
  ['memory', memoryTransport],
  ['nats', natsTransport],
  ['jetstream', jetStreamTransport],
  ['redis', redisTransport],
  ['rabbitmq', rabbitMqTransport],
])) as Map<string, TransportFactory>;

/** Makes a transport selectable by name (`EVENT_BUS_TRANSPORT=<name>`), for an application that brings its own. */
export function registerTransport(name: string, factory: TransportFactory): void {
  const problem = tokenProblem(name);
  if (problem) throw new Error(`registerTransport(${JSON.stringify(name)}): the name ${problem}`);
  const existing = factories.get(name);
  if (existing && existing !== factory) throw new Error(`registerTransport: a transport named "${name}" is registered already`);
  factories.set(name, factory);
}

export function transportFactory(name: string): TransportFactory | undefined {
  return factories.get(name);
}

export function transportNames(): string[] {
  return [...factories.keys()];
}
