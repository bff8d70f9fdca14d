import 'reflect-metadata';
import { EventRegistrationError, EventRegistry, eventRegistry } from '../../lib/registry/event-registry.js';
import { DomainEvent } from '../../lib/registry/domain-event.decorator.js';
import { ValueObject } from '../../lib/registry/value-object.decorator.js';

describe('EventRegistry', () => {
  it.each([
    ['', 'must not be empty'],
    ['Order.Placed', 'must not contain'],
    ['Order*', 'must not contain'],
    ['Order>', 'must not contain'],
    ['Order Placed', 'must not contain'],
    ['Order\tPlaced', 'must not contain'],
    ['Order\u0001', 'must not contain'],
    ['$SYS', 'must not start with "$"'],
    ['E'.repeat(129), 'must be at most 128 characters, got 129'],
  ])('refuses the wire name %j', (name, why) => {
    class Named {}
    expect(() => new EventRegistry().registerEvent(Named, name)).toThrow(EventRegistrationError);
    expect(() => new EventRegistry().registerEvent(Named, name)).toThrow(`@DomainEvent(${JSON.stringify(name)}) on class Named: the name ${why}`);
    expect(() => new EventRegistry().registerValueObject(Named, name)).toThrow(`@ValueObject(${JSON.stringify(name)}) on class Named`);
  });

  it('accepts names with dashes, underscores, colons and unicode', () => {
    const registry = new EventRegistry();
    for (const name of ['order-placed', 'Order_Placed', 'billing:Paid', 'Événement']) {
      class Named {}
      expect(registry.registerEvent(Named, name).name).toBe(name);
      expect(registry.eventByName(name)?.type).toBe(Named);
    }
  });

  it('fails for two classes under one name, naming both', () => {
    const registry = new EventRegistry();
    class First {}
    class Second {}
    registry.registerEvent(First, 'Same');
    expect(() => registry.registerEvent(Second, 'Same')).toThrow('@DomainEvent: classes First and Second are both registered as "Same"');
    registry.registerValueObject(First, 'SameValue');
    expect(() => registry.registerValueObject(Second, 'SameValue')).toThrow('@ValueObject: classes First and Second are both registered as "SameValue"');
  });

  it('lets one class be registered again, and keeps events and value objects apart', () => {
    const registry = new EventRegistry();
    class Twice {}
    registry.registerEvent(Twice, 'Twice');
    expect(() => registry.registerEvent(Twice, 'Twice')).not.toThrow();
    expect(() => registry.registerValueObject(Twice, 'Twice')).not.toThrow();
    expect(registry.eventOf(new Twice())?.name).toBe('Twice');
    expect(registry.valueObjectByType(Twice)?.name).toBe('Twice');
  });

  it('registers through the decorators, by class name when no name is given', () => {
    @DomainEvent({ key: (e: KeyedByDecorator) => e.room })
    class KeyedByDecorator {
      constructor(readonly room: string) {}
    }
    @ValueObject()
    class ValueByDecorator {}
    expect(eventRegistry.eventByName('KeyedByDecorator')?.key?.(new KeyedByDecorator('r1'))).toBe('r1');
    expect(eventRegistry.valueObjectByName('ValueByDecorator')?.type).toBe(ValueByDecorator);
    expect(() => DomainEvent('Bad.Name')(class Whatever {})).toThrow('the name must not contain');
  });

  it('does not count a subclass as its registered base class', () => {
    const registry = new EventRegistry();
    class Base {}
    class Derived extends Base {}
    registry.registerEvent(Base, 'Base');
    expect(registry.eventOf(new Derived())).toBeUndefined();
  });
});
