import { EventRegistry } from '../../lib/registry/event-registry.js';
import { EventRoute } from '../../lib/event-route.js';
import { patternProblem, subjectMatches, subjectProblem } from '../../lib/routing/subject-pattern.js';

describe('subjectMatches (NATS token rules)', () => {
  it.each([
    ['a', 'a', true],
    ['a', 'b', false],
    ['a', 'a.b', false],
    ['a.b', 'a', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a', false],
    ['a.*', 'a.b.c', false],
    ['*.b', 'a.b', true],
    ['*.b', 'a.c', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c', true],
    ['*.>', 'a', false],
    ['*.>', 'a.b', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
  ])('%s matches %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern.split('.'), subject.split('.'))).toBe(expected);
  });

  it.each([
    ['a..b', 'must not be empty'],
    ['a.>.b', '">" may only be the last token'],
    ['a b', 'must not contain'],
    ['a.b*', 'must not contain'],
  ])('refuses the pattern %j', (pattern, why) => {
    expect(patternProblem(pattern)).toContain(why);
  });

  it('refuses wildcards where a subject is published', () => {
    expect(subjectProblem('events.domain')).toBeUndefined();
    expect(subjectProblem('events.*')).toContain('must not contain');
    expect(subjectProblem('events.')).toContain('must not be empty');
  });
});

describe('EventRoute', () => {
  const registry = new EventRegistry();
  class Entered {}
  class Unknown {}
  registry.registerEvent(Entered, 'Entered');

  it.each([
    ['a class', Entered, undefined, ['Entered', 'Entered.*']],
    ['a name', 'Entered', undefined, ['Entered', 'Entered.*']],
    ['a name and a key', 'Entered', 'room-1', ['Entered.room-1']],
    ['a class and a key', Entered, 'room-1', ['Entered.room-1']],
    ['a pattern', '*.room-1', undefined, ['*.room-1']],
    ['everything', '>', undefined, ['>']],
  ])('subscribes for %s to exactly what it matches', (_case, pattern, key, subjects) => {
    const route = EventRoute.of(pattern, key, registry, 'test');
    expect(route.subjects).toEqual(subjects);
    for (const [type, eventKey] of [['Entered', undefined], ['Entered', 'room-1'], ['Entered', 'room-2'], ['Left', 'room-1'], ['Left', undefined]] as const) {
      const tokens = eventKey === undefined ? [type] : [type, eventKey];
      const bySubjects = route.subjects.some((s) => subjectMatches(s.split('.'), tokens));
      expect([type, eventKey, route.matches(type, eventKey)]).toEqual([type, eventKey, bySubjects]);
      if (bySubjects) expect(route.matchesType(type)).toBe(true);
    }
  });

  it.each([
    [Unknown, undefined, 'test: class Unknown has no @DomainEvent() decorator'],
    ['Nope', undefined, 'test: no @DomainEvent class is registered as "Nope"'],
    ['*.room-1', 'room-1', 'a key goes with an event class or name, not with the pattern "*.room-1"'],
    ['Entered', 'a.b', 'key "a.b" must not contain'],
    ['a.>.b', undefined, '">" may only be the last token'],
    ['', undefined, 'expected an event class, a wire name or a pattern'],
  ])('refuses %p with key %p', (pattern, key, message) => {
    expect(() => EventRoute.of(pattern as string, key, registry, 'test')).toThrow(message);
  });
});
