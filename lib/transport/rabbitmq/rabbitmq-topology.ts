import { createHash } from 'node:crypto';
import { printable } from '../../printable.js';

/** The content type of CloudEvents in structured mode (the CloudEvents AMQP binding). */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

/**
 * Deliveries of one message copy after which a quorum queue dead-letters it itself: a backstop
 * above the retry policy's own count (which dead-letters first up to this many attempts), as
 * RabbitMQ 4 sets by default. Only returns count (a crashed consumer, a lost connection): retries
 * travel as new copies.
 */
export const DELIVERY_LIMIT = 20;

/** Headers the transport puts on the copies it makes (retries, dead letters, replays). */
export const Header = {
  /** The queue a retry returns to (matched by the retry exchange). */
  RetryQueue: 'retry-queue',
  /** Failed deliveries of the event before this copy. */
  Attempts: 'retry-attempts',
  /** The subject the event was published to (a copy's routing key is a queue's name). */
  Subject: 'retry-subject',
  /** On a copy for an instance's shared queue: the pattern of the subscription it is for. */
  Target: 'retry-target',
  DeadQueue: 'dlq-queue',
  DeadScope: 'dlq-group',
  DeadAttempts: 'dlq-attempts',
  DeadError: 'dlq-error',
  DeadType: 'dlq-type',
  DeadTime: 'dlq-time',
  /** On a tombstone: the offset of the dead letter that was replayed. */
  Replayed: 'dlq-replayed',
  /** On a listing marker: where a reader stops. */
  Marker: 'dlq-marker',
  /** With the archive on: when the event was published (ms since the epoch), to start a group from a time. */
  Time: 'published-at',
} as const;

/** A wire value as one line of bounded text: nothing from the broker reaches a log or a listing raw. */
export const oneLine = (value: unknown, max = 1024): string =>
  typeof value === 'string' ? printable(value, max) : typeof value === 'number' ? String(value) : '';

/** A count from a header: a non-negative integer, else 0. */
export const wireCount = (value: unknown): number => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0);

/** The binding key of a NATS pattern: `*` is one word in both; `>` becomes `#` (which also matches no word: see exactMatchNeeded). */
export function bindingKey(pattern: string): string {
  return pattern.endsWith('>') ? `${pattern.slice(0, -1)}#` : pattern;
}

/**
 * Whether a queue bound with bindingKey(pattern) can receive subjects the NATS pattern does not
 * match, so that each delivery must be checked: `#` matches zero words where `>` needs one, and a
 * literal `#` token is a wildcard to RabbitMQ.
 */
export function exactMatchNeeded(pattern: string): boolean {
  return pattern.endsWith('>') || pattern.split('.').includes('#');
}

/**
 * A retry waits in a queue whose message TTL is its delay. Delays are rounded to four steps per
 * doubling (within ±12.5%), so that a few queues serve every delay the policy picks and its jitter
 * survives: … 96, 112, 128, 160, 192, 224, 256 … ms.
 */
export function retryTierMs(delayMs: number): number {
  if (delayMs <= 1) return 1;
  const quarter = 2 ** Math.floor(Math.log2(delayMs)) / 4;
  return Math.max(1, Math.round(Math.round(delayMs / quarter) * quarter));
}

export type QueueArguments = Record<string, string | number | boolean>;

/** What the transport declares on the broker, all named after the exchange. */
export class RabbitMqTopology {
  /** Headers exchange through which retries come back to their queue. */
  readonly retryExchange: string;
  /** Stream of dead letters (and the tombstones of those replayed). */
  readonly deadLetterStream: string;
  /** Stream of every event published, when the archive is on. */
  readonly archiveStream: string;

  constructor(
    readonly exchange: string,
    private readonly queueType: 'quorum' | 'classic',
    private readonly broadcastInactiveMs: number,
  ) {
    this.retryExchange = `${exchange}.retry`;
    this.deadLetterStream = `${exchange}.dead-letters`;
    this.archiveStream = `${exchange}.archive`;
  }

  /**
   * A subscription's queue: `<exchange>.group.<group>.<subject>` (shared by the group's members)
   * or `<exchange>.instance.<instance id>.<subject>` (an ordered one of this instance's own).
   * Neither a group nor an instance id holds a `.`, so names are unambiguous; past RabbitMQ's 255
   * bytes a hash stands in.
   */
  queueName(kind: 'group' | 'instance', scope: string, subject: string): string {
    const name = `${this.exchange}.${kind}.${scope}.${subject}`;
    if (Buffer.byteLength(name) <= 255) return name;
    return `${this.exchange}.${kind}.~${createHash('sha256').update(`${scope}\n${subject}`).digest('hex').slice(0, 40)}`;
  }

  /** The queue this instance's group-less subscriptions share, one binding per pattern. */
  instanceQueue(instanceId: string): string {
    return `${this.exchange}.instance.${instanceId}`;
  }

  /** The group (or `instance-<id>`) whose queue this is, for dead letters the broker wrote. */
  scopeOfQueue(queue: string): string {
    const rest = queue.startsWith(`${this.exchange}.`) ? queue.slice(this.exchange.length + 1) : '';
    const [kind, scope] = rest.split('.', 2);
    if (kind === 'group' && scope) return scope;
    if (kind === 'instance' && scope) return `instance-${scope}`;
    return '';
  }

  /**
   * A group's queue is durable and outlives its members. Quorum queues count deliveries (the
   * retry policy reads the count) and dead-letter to the stream past the backstop; an ordered
   * group has one active consumer at a time, so that the group handles its events in queue order.
   */
  groupQueueArguments(ordered: boolean): QueueArguments {
    const args: QueueArguments =
      this.queueType === 'quorum'
        ? {
            'x-queue-type': 'quorum',
            'x-delivery-limit': DELIVERY_LIMIT,
            'x-dead-letter-exchange': '',
            'x-dead-letter-routing-key': this.deadLetterStream,
            'x-dead-letter-strategy': 'at-least-once',
            'x-overflow': 'reject-publish',
          }
        : { 'x-queue-type': 'classic' };
    if (ordered) args['x-single-active-consumer'] = true;
    return args;
  }

  /**
   * An instance's own queue: classic (cheap) and durable, so that it keeps what is published
   * while the instance reconnects or restarts with the same id; the broker deletes it once unused
   * for the inactivity window.
   */
  instanceQueueArguments(): QueueArguments {
    return { 'x-queue-type': 'classic', 'x-expires': this.broadcastInactiveMs };
  }

  retryTierQueue(tierMs: number): string {
    return `${this.exchange}.retry.${tierMs}`;
  }

  /** A delay queue: its messages expire after the tier's delay into the retry exchange, which routes them back by header. */
  retryTierArguments(tierMs: number): QueueArguments {
    const args: QueueArguments = { 'x-message-ttl': tierMs, 'x-dead-letter-exchange': this.retryExchange };
    if (this.queueType === 'classic') return { 'x-queue-type': 'classic', ...args };
    return { 'x-queue-type': 'quorum', ...args, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
  }
}
