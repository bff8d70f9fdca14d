import { wireNameProblem } from '../routing/subject-token.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Type<T = any> = abstract new (...args: any[]) => T;

export interface DomainEventOptions<T = unknown> {
  /** Derives the routing key appended to the subject (`<prefix>.<name>.<key>`). */
  key?: (event: T) => string | undefined;
}

export interface DomainEventRegistration {
  readonly name: string;
  readonly type: Type;
  readonly key?: (event: unknown) => string | undefined;
}

export interface ValueObjectRegistration {
  readonly name: string;
  readonly type: Type;
}

export class EventRegistrationError extends Error {
  override readonly name = 'EventRegistrationError';
}

/**
 * The type registry: stable wire names for domain event and value object classes.
 * Decorators register at class definition, so a bad or duplicate name fails as the
 * application's modules load, before anything is published or received.
 */
export class EventRegistry {
  private readonly eventsByName = new Map<string, DomainEventRegistration>();
  private readonly eventsByType = new Map<Type, DomainEventRegistration>();
  private readonly valueObjectsByName = new Map<string, ValueObjectRegistration>();
  private readonly valueObjectsByType = new Map<Type, ValueObjectRegistration>();

  registerEvent(type: Type, name: string, options: DomainEventOptions = {}): DomainEventRegistration {
    this.check('@DomainEvent', type, name, this.eventsByName.get(name)?.type);
    const registration: DomainEventRegistration = { name, type, key: options.key as DomainEventRegistration['key'] };
    this.eventsByName.set(name, registration);
    this.eventsByType.set(type, registration);
    return registration;
  }

  registerValueObject(type: Type, name: string): ValueObjectRegistration {
    this.check('@ValueObject', type, name, this.valueObjectsByName.get(name)?.type);
    const registration: ValueObjectRegistration = { name, type };
    this.valueObjectsByName.set(name, registration);
    this.valueObjectsByType.set(type, registration);
    return registration;
  }

  eventByName(name: string): DomainEventRegistration | undefined {
    return this.eventsByName.get(name);
  }

  /** The registration of the event's own class (not of a base class: a subclass needs its own name). */
  eventOf(event: object): DomainEventRegistration | undefined {
    return this.eventsByType.get(event.constructor as Type);
  }

  eventByType(type: Type): DomainEventRegistration | undefined {
    return this.eventsByType.get(type);
  }

  valueObjectByName(name: string): ValueObjectRegistration | undefined {
    return this.valueObjectsByName.get(name);
  }

  valueObjectByType(type: Type): ValueObjectRegistration | undefined {
    return this.valueObjectsByType.get(type);
  }

  private check(decorator: string, type: Type, name: string, existing: Type | undefined): void {
    const problem = wireNameProblem(name);
    if (problem) {
      throw new EventRegistrationError(`${decorator}(${JSON.stringify(name)}) on class ${type.name}: the name ${problem}`);
    }
    if (existing && existing !== type) {
      throw new EventRegistrationError(
        `${decorator}: classes ${existing.name} and ${type.name} are both registered as "${name}"; wire names must be unique`,
      );
    }
  }
}

/** The process-wide registry that `@DomainEvent()` and `@ValueObject()` write to. */
export const eventRegistry: EventRegistry = ((globalThis as Record<symbol, EventRegistry>)[Symbol.for('nestjs-domain-events.eventRegistry')] ??= new EventRegistry());
