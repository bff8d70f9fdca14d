import { EventCodec } from '../codec/event-codec.js';
import { UnregisteredEventError, type PublishOptions } from '../domain-event-bus.js';
import { eventIdOf, routingKeyOf, subjectOf } from '../event-address.js';
import { isoNow } from '../iso-clock.js';
import { currentEventContext } from '../observability/handling-context.js';
import { eventRegistry, type DomainEventRegistration } from '../registry/event-registry.js';
import type { ResolvedEventBusOptions } from '../resolve-options.js';
import type { OutboxTable } from './outbox-table.js';
import type { StatementRunner } from './outbox-transaction.js';

/** One event as the outbox stores it: exactly what the relay will send. */
export interface OutboxRow {
  readonly id: string;
  readonly subject: string;
  readonly key: string | undefined;
  readonly payload: Uint8Array;
}

/**
 * Encodes events into outbox rows and inserts rows in a transaction. Events are encoded at write
 * time, with the id and time they carry on the wire, by the bus's codec. Their `origin` is
 * `<instance>/outbox`: the event reaches every instance through the transport after commit, the
 * writer included, so no instance may take it for its own echo and drop it.
 */
export class OutboxWriter {
  private readonly codec: EventCodec;
  private readonly causation: boolean;

  constructor(
    options: ResolvedEventBusOptions,
    private readonly table: OutboxTable,
  ) {
    this.causation = options.causation;
    this.codec = new EventCodec(eventRegistry, {
      origin: `${options.instanceId}/outbox`,
      source: options.source,
      subjectPrefix: options.subjectPrefix,
      maxMessageBytes: options.codec.maxMessageBytes,
    });
  }

  /** Throws for an unregistered event, an invalid routing key or id, a subject too long, or data that cannot be encoded. */
  row(event: object, options?: PublishOptions, registration: DomainEventRegistration | undefined = event && eventRegistry.eventOf(event)): OutboxRow {
    if (!registration) {
      const name = (event as object | null)?.constructor?.name ?? typeof event;
      throw new UnregisteredEventError(`${name} is not a domain event: decorate its class with @DomainEvent()`);
    }
    const key = routingKeyOf(event, registration, options?.key);
    const subject = subjectOf(this.codec.subjectBase(registration), key, registration);
    const id = eventIdOf(options?.id, registration);
    // Written while handling an event, it is caused by that event and continues its flow, as a publish would be.
    const cause = this.causation ? currentEventContext() : undefined;
    const correlationId = options?.correlationId ?? cause?.correlationId;
    const flow = correlationId !== undefined && correlationId !== id ? { correlationid: correlationId, causationid: cause?.id } : cause && { causationid: cause.id };
    return { id, subject, key, payload: this.codec.encode(event, registration, id, isoNow(), flow) };
  }

  /** Inserts the rows, in order, with one statement. */
  async insert(run: StatementRunner, rows: readonly OutboxRow[]): Promise<void> {
    if (rows.length === 0) return;
    const ids: string[] = [];
    const subjects: string[] = [];
    const keys: (string | null)[] = [];
    const payloads: Buffer[] = [];
    for (const row of rows) {
      ids.push(row.id);
      subjects.push(row.subject);
      keys.push(row.key ?? null);
      payloads.push(Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength));
    }
    await run(this.table.insert, [ids, subjects, keys, payloads]);
  }
}
