import { ON_DOMAIN_EVENT_METADATA } from './constants.js';
import type { SubscribeOptions } from './listener-sets.js';
import type { EventPattern } from './event-route.js';

export interface OnDomainEventMetadata {
  readonly pattern: EventPattern;
  readonly options: SubscribeOptions;
}

/**
 * Marks a provider or controller method as a handler, called as `(event, context)`.
 * `pattern`: an event class or wire name (every routing key, or only `options.key`), or a
 * NATS pattern relative to the subject prefix (`'>'` every event, `'*.room-42'`).
 * With `options.group`, each event runs on exactly one instance of the group.
 */
export function OnDomainEvent(pattern: EventPattern, options: SubscribeOptions = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const method = descriptor.value as object;
    const existing: OnDomainEventMetadata[] = Reflect.getMetadata(ON_DOMAIN_EVENT_METADATA, method) ?? [];
    Reflect.defineMetadata(ON_DOMAIN_EVENT_METADATA, [...existing, { pattern, options }], method);
    return descriptor;
  };
}
