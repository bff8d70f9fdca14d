import type { DeadLetterStore } from '../delivery/dead-letter-store.js';
import type { DeliveryOptions } from '../delivery/delivery-options.js';
import type { DeliveryStatus } from '../delivery/durable-delivery.js';

/** An event handed over without encoding (memory transport with the codec off). */
export interface LocalEnvelope {
  readonly event: object;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  readonly origin: string;
}

/** Encoded CloudEvents JSON off the wire, or a LocalEnvelope from an in-process publisher. */
export type TransportPayload = Uint8Array | LocalEnvelope;

/**
 * Handles one message. Returns undefined when it is done, or a promise that settles when it is;
 * a rejection means it failed (a durable transport retries or dead-letters it).
 */
export type TransportMessageHandler = (subject: string, payload: TransportPayload, attempt: number) => Promise<unknown> | undefined;

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
  /** Durable transports: deliveries in flight, attempts timed out, handlers running long. */
  readonly delivery?: DeliveryStatus;
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
  /** Where a durable transport keeps what failed on every attempt; every transport that redelivers has one. */
  readonly deadLetters?: DeadLetterStore;
  connect(): Promise<void>;
  /**
   * Hands the message to the broker. Throws when the transport is closed. A durable transport
   * returns a promise that settles once the broker stored the message (rejecting if it did not).
   */
  publish(subject: string, payload: Uint8Array | LocalEnvelope, id: string): Promise<unknown> | void;
  /** Subscribes to a subject or wildcard pattern; with a queue, as a member of that queue group. */
  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, delivery: DeliveryOptions): TransportSubscription;
  /** Resolves once the broker has processed every subscription and publish made so far. */
  flush(): Promise<void>;
  /** Delivers what is in flight, then closes. */
  close(): Promise<void>;
  status(): TransportStatus;
}

export class TransportClosedError extends Error {
  override readonly name = 'TransportClosedError';
}
