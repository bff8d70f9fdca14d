// What the JetStream transport's parts report, kept apart from them so that the package's declarations
// reach no NATS client types (which older module resolution cannot load).

/** What the publisher tells the stream's leadership watch. */
export interface LeadershipReport {
  /** A publish found no leader (the first of a run of failures starts the watch). */
  leaderless(error: Error): void;
  /** A publish was stored: the stream has a leader. */
  led(): void;
}

export interface PublisherStatus {
  /** Publishes awaiting their ack. */
  readonly inFlight: number;
  /** Publishes waiting for one of the `maxPublishesInFlight` slots. */
  readonly waiting: number;
  /** Publishes in flight that are being retried. */
  readonly retrying: number;
}

/** The event stream's leadership as this instance sees it, for status(). */
export interface StreamStatus {
  readonly name: string;
  /** True while no stream leader answers: publishes are being retried. */
  readonly leaderless: boolean;
  /** Since when (ISO-8601), while leaderless. */
  readonly leaderlessSince?: string;
}

export interface ConsumerRecovery {
  readonly name: string;
  readonly stream: string;
  /** Since when (ISO-8601) the consumer has been recovering, and why; absent while it delivers. */
  readonly recovering?: { readonly since: string; readonly reason: string };
}
