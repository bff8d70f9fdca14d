import type { EventRegistry, Type } from './registry/event-registry.js';
import { patternProblem, subjectMatches } from './routing/subject-pattern.js';
import { tokenProblem } from './routing/subject-token.js';

/** What a handler listens to: a class, a wire name, or a NATS pattern relative to the subject prefix. */
export type EventPattern = string | Type;

const WILDCARD_OR_SEPARATOR = /[.*>]/;

/**
 * A compiled pattern: the subjects to subscribe to (relative to the prefix) and a matcher for
 * events this instance publishes itself, which never come back through the transport.
 */
export class EventRoute {
  /** Relative subjects to subscribe to; together they match exactly what matches() accepts. */
  readonly subjects: readonly string[];
  /** Equal for routes that match the same events. */
  readonly id: string;

  private constructor(
    /** The wire name, for a class or name route; undefined for a wildcard pattern. */
    readonly type: string | undefined,
    readonly key: string | undefined,
    private readonly tokens: readonly string[] | undefined,
  ) {
    if (tokens) this.subjects = [tokens.join('.')];
    else if (key !== undefined) this.subjects = [`${type}.${key}`];
    else this.subjects = [type!, `${type}.*`]; // unkeyed events and every key
    this.id = this.subjects.join(' ');
  }

  /**
   * A class or a plain name matches the type with any key (or only `key`); a string with `.`,
   * `*` or `>` is a NATS pattern over `<type>[.<key>]`. Names must be registered: received
   * events are rebuilt into their class.
   */
  static of(pattern: EventPattern, key: string | undefined, registry: EventRegistry, where: string): EventRoute {
    if (key !== undefined) {
      const problem = tokenProblem(key);
      if (problem) throw new Error(`${where}: key ${JSON.stringify(key)} ${problem}`);
    }
    if (typeof pattern === 'function') {
      const registration = registry.eventByType(pattern);
      if (!registration) throw new Error(`${where}: class ${pattern.name} has no @DomainEvent() decorator`);
      return new EventRoute(registration.name, key, undefined);
    }
    if (typeof pattern !== 'string' || pattern === '') throw new Error(`${where}: expected an event class, a wire name or a pattern`);
    if (!WILDCARD_OR_SEPARATOR.test(pattern)) {
      if (!registry.eventByName(pattern)) throw new Error(`${where}: no @DomainEvent class is registered as "${pattern}"`);
      return new EventRoute(pattern, key, undefined);
    }
    const problem = patternProblem(pattern);
    if (problem) throw new Error(`${where}: pattern ${JSON.stringify(pattern)}: ${problem}`);
    if (key !== undefined) throw new Error(`${where}: a key goes with an event class or name, not with the pattern "${pattern}"`);
    return new EventRoute(undefined, undefined, pattern.split('.'));
  }

  /** Whether events of this type might match (the key is checked per event by matchesKey). */
  matchesType(type: string): boolean {
    if (this.tokens === undefined) return this.type === type;
    const first = this.tokens[0];
    return first === '>' || first === '*' || first === type;
  }

  matches(type: string, key: string | undefined): boolean {
    if (this.tokens === undefined) return this.type === type && (this.key === undefined || this.key === key);
    return subjectMatches(this.tokens, key === undefined ? [type] : [type, key]);
  }
}
