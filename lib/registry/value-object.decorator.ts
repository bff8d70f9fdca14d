import { eventRegistry, type Type } from './event-registry.js';

/**
 * Registers a class whose instances may sit inside domain events, so that they are
 * rebuilt as instances of this class on the receiving side (the class name when no name is given).
 */
export function ValueObject(name?: string): ClassDecorator {
  return (target) => {
    const type = target as unknown as Type;
    eventRegistry.registerValueObject(type, name ?? type.name);
  };
}
