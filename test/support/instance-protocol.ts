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
    }
  /** Publishes each event on its own, all in flight at once, and reports how each publish settled. */
  | { cmd: 'publishSettled'; type: FixtureEventType; ids: string[] }
  | { cmd: 'publishUnregistered' }
  | { cmd: 'subscribe'; name: string; pattern: string; key?: string; group?: string; start?: 'new' | 'all' | number }
  | { cmd: 'unsubscribe'; name: string }
  | { cmd: 'records' }
  | { cmd: 'status' }
  /** Whether anything reached Object.prototype in this process. */
  | { cmd: 'polluted' }
  /** Makes the "poison" handler succeed from now on. */
  | { cmd: 'heal' }
  | { cmd: 'deadLetters' }
  | { cmd: 'replay'; id?: string }
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
