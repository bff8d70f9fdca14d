import { eventRegistry, type DomainEventOptions, type Type } from './event-registry.js';

/**
 * Registers a class as a distributed domain event under a stable wire name
 * (the class name when omitted). Its instances published on any instance are
 * rebuilt as instances of this class on every other one.
 */
export function DomainEvent<T = any>(name?: string, options?: DomainEventOptions<T>): ClassDecorator;
export function DomainEvent<T = any>(options: DomainEventOptions<T>): ClassDecorator;
export function DomainEvent<T = any>(
  nameOrOptions?: string | DomainEventOptions<T>,
  options?: DomainEventOptions<T>,
): ClassDecorator {
  return (target) => {
    const type = target as unknown as Type<T>;
    if (typeof nameOrOptions === 'object') eventRegistry.registerEvent(type, type.name, nameOrOptions as DomainEventOptions);
    else eventRegistry.registerEvent(type, nameOrOptions ?? type.name, options as DomainEventOptions);
  };
}
