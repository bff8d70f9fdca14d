import type { DeadLetterStore } from '../delivery/dead-letter-store.js';
import type { EnvelopeExtensions } from '../codec/envelope-extensions.js';
import type { DeliveryOptions } from '../delivery/delivery-options.js';
import type { MessageHeaders } from '../message-headers.js';

export type { MessageHeaders } from '../message-headers.js';
import type { DeliveryStatus } from '../delivery/durable-delivery.js';

/** An event handed over without encoding (memory transport with the codec off). */
export interface LocalEnvelope {
  readonly event: object;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  readonly origin: string;
  readonly key: string | undefined;
  /** Correlation and trace context; none when absent. */
  readonly extensions?: EnvelopeExtensions;
}

/** Encoded CloudEvents JSON off the wire, or a LocalEnvelope from an in-process publisher. */
export type TransportPayload = Uint8Array | LocalEnvelope;

/**
 * Handles one message, with its headers when it has any (binary-mode CloudEvents keep their
 * attributes there; pass the broker's own headers object, or undefined: no copy per message).
 * Returns undefined when it is done, or a promise that settles when it is; a rejection means it
 * failed (a durable transport retries or dead-letters it).
 */
export type TransportMessageHandler = (
  subject: string,
  payload: TransportPayload,
  attempt: number,
  headers: MessageHeaders | undefined,
) => Promise<unknown> | undefined;

export interface TransportSubscription {
  unsubscribe(): void;
}

export interface TransportStatus {
  readonly transport: string;
  readonly connected: boolean;
  /** The server currently connected to, when the transport has servers. */
  readonly server?: string;
  readonly disconnects: number;
  readonly reconnects: number;
  readonly lastError?: string;
  /** When lastError happened (ISO time). */
  readonly lastErrorAt?: string;
  /** Since when the connection is down (ISO time), while it is. */
  readonly disconnectedSince?: string;
  /** Publishes accepted and not yet confirmed by the server (core NATS keeps them across reconnects). */
  readonly bufferedPublishes?: number;
  readonly bufferedPublishBytes?: number;
  /** Publishes refused because the publish buffer was at its bound. */
  readonly publishBufferRejections?: number;
  /** Publishes sent again after a reconnect because the server had not confirmed them (each may arrive twice). */
  readonly resentPublishes?: number;
  /** Accepted publishes that never reached the server (the connection closed for good, or a close() ran out of time). */
  readonly lostPublishes?: number;
  /** Received messages waiting for their handlers. */
  readonly receiveBuffered?: number;
  /** Received messages dropped because handlers fell behind and the receive buffer was full. */
  readonly droppedMessages?: number;
  /** Times handlers fell behind so far that messages were dropped, or the client or server reported a slow consumer. */
  readonly slowConsumers?: number;
  /** When `connected` last changed (ISO 8601): connected since, or disconnected since. */
  readonly since?: string;
  /** Durable transports: deliveries in flight, attempts timed out, handlers running long. */
  readonly delivery?: DeliveryStatus;
}

/** One durable consumer, as its server reports it. */
export interface ConsumerStatus {
  readonly name: string;
  /** The group, or `instance-<instance id>` for this instance's group-less handlers. */
  readonly group: string;
  /** Events stored and not yet delivered to it. */
  readonly pending: number;
  /** Events delivered and awaiting their ack. */
  readonly ackPending: number;
  /** Events delivered more than once and not yet acked. */
  readonly redelivered: number;
}

/** What a transport learns only by asking its server. */
export interface TransportInspection {
  readonly consumers?: readonly ConsumerStatus[];
  /** Dead letters kept (durable transports). */
  readonly deadLetters?: number;
  /** What is missing or broken on the server (a stream, a consumer); empty when all is well. */
  readonly problems: readonly string[];
}

/**
 * What the bus needs from a broker: subjects in NATS syntax, broadcast subscriptions and
 * queue groups (one member per group gets each message). Every transport must pass the
 * conformance suite in test/transport.
 */
export interface EventTransport {
  /** True when publish() takes encoded JSON bytes; false when it takes a LocalEnvelope. */
  readonly encodes: boolean;
  /** True when a failed message is delivered again (so the bus remembers which handlers already ran). */
  readonly redelivers: boolean;
  /** True when publish() carries headers to subscribers: binary-mode CloudEvents need it. */
  readonly carriesHeaders?: boolean;
  /** Where a durable transport keeps what failed on every attempt; every transport that redelivers has one. */
  readonly deadLetters?: DeadLetterStore;
  connect(): Promise<void>;
  /**
   * Hands the message, and its headers if any, to the broker. Throws when the transport is closed.
   * A durable transport returns a promise that settles once the broker stored the message
   * (rejecting if it did not). `newId` is true when the bus made the id for this very publish: no
   * earlier publish had it, so a transport need not look it up among those it must store once. A
   * re-send (the outbox relay's, an application's with the same id) never says so.
   */
  publish(subject: string, payload: Uint8Array | LocalEnvelope, id: string, headers?: MessageHeaders, newId?: boolean): Promise<unknown> | void;
  /** Subscribes to a subject or wildcard pattern; with a queue, as a member of that queue group. */
  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription;
  /** Resolves once the broker has processed every subscription and publish made so far. */
  flush(): Promise<void>;
  /**
   * Stops taking messages, when the application starts shutting down: from now on the other
   * members of a queue group get them, and a durable consumer keeps its position for the next
   * start. What was received already is still handled, and publishing goes on until close().
   */
  stopReceiving(): Promise<void>;
  /**
   * Stops receiving, waits for the handlers still running (up to the shutdown timeout; a durable
   * transport acknowledges what they finished), delivers what was published, then closes.
   */
  close(): Promise<void>;
  status(): TransportStatus;
  /** Asks the server what only it knows (durable consumers, dead letters, missing streams); absent where there is nothing to ask. */
  inspect?(): Promise<TransportInspection>;
}

export class TransportClosedError extends Error {
  override readonly name = 'TransportClosedError';
}

/** A publish the broker did not confirm within the transport's publish timeout (it may still have been stored). */
export class PublishTimeoutError extends Error {
  override readonly name = 'PublishTimeoutError';
}
