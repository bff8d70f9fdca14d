/** What a handler learns about the event it is given, beside the event itself. */
export class EventContext {
  private parsedTime: Date | undefined;

  constructor(
    /** CloudEvents id: unique per event, the same on every instance. */
    readonly id: string,
    /** The wire name (`@DomainEvent` name). */
    readonly type: string,
    /** CloudEvents source of the publisher. */
    readonly source: string,
    /** Instance id of the publisher; undefined for producers outside this library. */
    readonly origin: string | undefined,
    /** The full subject, `<prefix>.<type>[.<key>]`. */
    readonly subject: string,
    /** The routing key, when the event was published with one. */
    readonly key: string | undefined,
    /** True when this instance published the event. */
    readonly local: boolean,
    private readonly isoTime: string | undefined,
    /** Delivery attempt, from 1; above 1 only for retried JetStream deliveries. */
    readonly attempt: number = 1,
  ) {}

  /** When the event was published (the time of receipt for producers that sent none). */
  get time(): Date {
    return (this.parsedTime ??= this.isoTime === undefined ? new Date() : new Date(this.isoTime));
  }
}
