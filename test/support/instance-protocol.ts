/** Commands the behaviour suites send to an application instance, in-process or over IPC. */
export type FixtureEventType = 'PlayerEnteredRoom' | 'OrderPlaced' | 'GameTick';

export type InstanceCommand =
  | {
      cmd: 'publish';
      type: FixtureEventType;
      ids: string[];
      room?: string;
      via?: 'domain' | 'domain-all' | 'cqrs' | 'cqrs-all' | 'aggregate';
      intervalMs?: number;
      /** CloudEvents id to publish with (the same for every event of the command). */
      eventId?: string;
      correlationId?: string;
      /** Publish inside an active OpenTelemetry span of this name (instances started with FIXTURE_OTEL=true). */
      span?: string;
    }
  /** Publishes each event on its own, all in flight at once, and reports how each publish settled. */
  | { cmd: 'publishSettled'; type: FixtureEventType; ids: string[] }
  | { cmd: 'publishUnregistered' }
  | { cmd: 'subscribe'; name: string; pattern: string; key?: string; group?: string; start?: 'new' | 'all' | number }
  | { cmd: 'unsubscribe'; name: string }
  | { cmd: 'records' }
  | { cmd: 'status' }
  /** EventBusHealthIndicator.isHealthy('eventBus', options). */
  | { cmd: 'health'; maxOutboxLagMs?: number }
  /** The heap in use after a full garbage collection, in bytes. */
  | { cmd: 'heap' }
  /** Whether anything reached Object.prototype in this process. */
  | { cmd: 'polluted' }
  /** Makes the "poison" handler succeed from now on. */
  | { cmd: 'heal' }
  | { cmd: 'deadLetters' }
  /** Finished spans and collected metrics (instances started with FIXTURE_OTEL=true). */
  | { cmd: 'telemetry' }
  | { cmd: 'replay'; id?: string }
  /**
   * Outbox instances (FIXTURE_OUTBOX): per id, an order row and its event in one transaction (or all in one).
   * The event is OrderPlaced, or PlayerEnteredRoom when rooms are given (id i in rooms[i % rooms.length]).
   */
  | {
      cmd: 'order';
      ids: string[];
      /** Implicitly inside @Transactional() (domain: DomainEventBus, cqrs: EventBus, aggregate: AggregateRoot.commit), or EventOutbox.publish(e, manager). */
      via: 'domain' | 'cqrs' | 'aggregate' | 'explicit';
      rooms?: string[];
      /** All ids in one transaction. */
      oneTransaction?: boolean;
      /** Throw after publishing: the transaction rolls back. */
      fail?: boolean;
      /** Publish an event whose data cannot be encoded. */
      unencodable?: boolean;
      /** Publish in the transaction and in a savepoint that rolls back. */
      savepoint?: boolean;
      /** Publish outside any transaction. */
      outside?: boolean;
      /** Wait this long inside the transaction and return what the handlers of this process saw meanwhile. */
      peekMs?: number;
      intervalMs?: number;
      /** SIGKILL this process right after the last commit. */
      killAfterCommit?: boolean;
    }
  | { cmd: 'close' };

/** One handler call, as seen by the instance that ran it. */
export interface HandlerRecord {
  handler: string;
  type: string;
  /** The id field of the domain event (playerId, orderId, tick id). */
  eventId: string;
  key: string | undefined;
  subject: string;
  local: boolean;
  attempt: number;
  origin: string | undefined;
  /** The CloudEvents id, and the flow it belongs to (EventContext). */
  id?: string;
  correlationId?: string;
  causationId?: string;
  /** The event is an instance of its class, with its Dates, value objects and bigints rebuilt. */
  intact: boolean;
}

/** How one publish of a `publishSettled` command settled, and how long it took. */
export interface PublishOutcome {
  id: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export type InstanceReply = { ok: true; value?: unknown } | { ok: false; error: string };

/** A finished OpenTelemetry span, as plain data. */
export interface FinishedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  /** Event names (an `exception` for a recorded error). */
  events: string[];
}

/** One metric's data points; a histogram's value is its count. */
export interface RecordedMetric {
  name: string;
  points: { attributes: Record<string, unknown>; value: number }[];
}
