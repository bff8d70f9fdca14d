import type { Connection } from 'rabbitmq-client';
import { subjectMatches } from '../../routing/subject-pattern.js';
import { bodyOf } from './rabbitmq-dead-letters.js';
import { readStream, type ConfirmedSend } from './rabbitmq-queries.js';
import { Header, wireCount, type RabbitMqTopology } from './rabbitmq-topology.js';

/** Copies confirmed at once while history is copied into a new queue. */
const COPY_WINDOW = 256;

/**
 * The archive: a stream bound to every routing key of the exchange, kept for its maximum age, so
 * that a new group can start from the oldest event kept (`start: 'all'`) or from a time. Queues
 * keep no history; this is the history. Each event published here carries its publish time (ms)
 * in a header, to start from a time exactly.
 */
export class RabbitMqArchive {
  constructor(
    private readonly topology: RabbitMqTopology,
    private readonly maxAgeMs: number,
  ) {}

  /** @internal Declares the stream and binds it; an existing one with another maximum age refuses (PRECONDITION_FAILED). */
  async declare(connection: Connection): Promise<void> {
    const stream = this.topology.archiveStream;
    await connection.queueDeclare({ queue: stream, durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-age': `${Math.ceil(this.maxAgeMs / 1000)}s` } });
    await connection.queueBind({ exchange: this.topology.exchange, queue: stream, routingKey: '#' });
  }

  /**
   * @internal Copies into a queue, oldest first, the archived events its pattern matches since
   * `start`; resolves to how many. The queue must be bound already, so that nothing published
   * meanwhile falls between the copy and the binding: what was published while copying may then
   * arrive twice (and is caught by the event id where handled ids are recorded).
   */
  async copyInto(connection: Connection, send: ConfirmedSend, queue: string, pattern: string, start: 'all' | Date): Promise<number> {
    const tokens = pattern.split('.');
    const since = start === 'all' ? 0 : start.getTime();
    // A time starts the read at the chunk holding it (an interval back from now); the header sorts out the rest.
    const from = start === 'all' ? 'first' : `${Math.max(1, Math.ceil((Date.now() - since) / 1000) + 1)}s`;
    let copied = 0;
    const pending: Promise<void>[] = [];
    await readStream(connection, send, this.topology.archiveStream, from, async (message) => {
      const h = message.headers ?? {};
      const time = wireCount(h[Header.Time]) || wireCount(message.timestamp) * 1000;
      if (time < since || !subjectMatches(tokens, message.routingKey.split('.'))) return;
      const headers = { [Header.Subject]: message.routingKey };
      pending.push(send({ routingKey: queue, durable: true, messageId: message.messageId, contentType: message.contentType, headers }, bodyOf(message)));
      copied++;
      if (pending.length >= COPY_WINDOW) await Promise.all(pending.splice(0));
    });
    await Promise.all(pending);
    return copied;
  }
}
