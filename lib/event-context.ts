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
    /**
     * The flow this event belongs to: the id of the event that started it (this event's own id when
     * it started one). Carried as the CloudEvents extension attribute `correlationid`.
     */
    readonly correlationId: string = id,
    /** The id of the event whose handling published this one (`causationid`); undefined for a flow's first event. */
    readonly causationId?: string,
    /** The producer's W3C trace context (`traceparent`, `tracestate` extension attributes), when it was traced. */
    readonly traceparent?: string,
    readonly tracestate?: string,
  ) {}

  /** When the event was published (the time of receipt for producers that sent none). */
  get time(): Date {
    return (this.parsedTime ??= this.isoTime === undefined ? new Date() : new Date(this.isoTime));
  }
}
