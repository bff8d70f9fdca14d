/** Counters of one bus instance, for metrics and health checks. */
export interface EventBusStats {
  /** Events this instance handed to the transport. */
  published: number;
  /** Events received through the transport (from others, or from itself for groups and on JetStream), once per subscription they arrived on. */
  received: number;
  /** Handler calls that threw or rejected. */
  handlerErrors: number;
  /** Received messages that could not become events (malformed, unknown type, not fitting the class). */
  decodeErrors: number;
  /** Publishes the transport refused or that could not be encoded. */
  publishErrors: number;
}

export function emptyStats(): EventBusStats {
  return { published: 0, received: 0, handlerErrors: 0, decodeErrors: 0, publishErrors: 0 };
}
