import type { AsyncMessage, Connection } from 'rabbitmq-client';
import type { DeadLetter, DeadLetterPage, DeadLetterQuery, DeadLetterStore } from '../../delivery/dead-letter-store.js';
import { queueExists, readStream, type ConfirmedSend } from './rabbitmq-queries.js';
import { Header, oneLine, wireCount as count, type RabbitMqTopology } from './rabbitmq-topology.js';

/** Letters per page when a query names no limit. */
const DEFAULT_PAGE = 1_000;
/** Bodies larger than this are not parsed for their type. */
const MAX_TYPE_SCAN_BYTES = 1 << 20;
const NO_BODY = Buffer.alloc(0);

/** What the transport hands over when it gives up on a message. */
export interface DeadLetterRecord {
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly eventId: string | undefined;
  readonly queue: string;
  /** The subscription's pattern, when the queue is shared by several (an instance's own). */
  readonly target: string | undefined;
  readonly scope: string;
  readonly subject: string;
  readonly attempts: number;
  readonly error: Error;
}

/** The CloudEvents type of a body, for the listing; empty when the body is not one. */
function typeOf(body: Buffer): string {
  if (body.length > MAX_TYPE_SCAN_BYTES) return '';
  try {
    const type = JSON.parse(body.toString('utf8'))?.type;
    return typeof type === 'string' ? oneLine(type, 256) : '';
  } catch {
    return '';
  }
}

interface StoredLetter {
  readonly letter: DeadLetter;
  readonly queue: string;
  readonly message: AsyncMessage;
}

/**
 * Dead letters in a stream (`<exchange>.dead-letters`): read without being consumed, so that
 * every instance can list them; each record is the event's body with the queue, group, subject,
 * attempts and error in headers, and its offset is its ref. Quorum queues dead-letter there too
 * past their delivery limit. A replayed letter is sent to the queue that gave up on it and
 * marked replayed by a tombstone record. A stream has no "end" to ask for: a reader appends a
 * marker and reads up to it.
 */
export class RabbitMqDeadLetters implements DeadLetterStore {
  private connection?: Connection;
  private send?: ConfirmedSend;

  constructor(private readonly topology: RabbitMqTopology) {}

  /** @internal Called once connected. */
  attach(connection: Connection, send: ConfirmedSend): void {
    this.connection = connection;
    this.send = send;
  }

  /** @internal Stores a message that failed for good; rejects when it could not be stored (the caller redelivers it then). */
  async store(record: DeadLetterRecord): Promise<void> {
    await this.clients().send(
      {
        routingKey: this.topology.deadLetterStream,
        durable: true,
        messageId: record.eventId,
        contentType: record.contentType,
        headers: {
          [Header.DeadQueue]: record.queue,
          ...(record.target === undefined ? {} : { [Header.Target]: record.target }),
          [Header.DeadScope]: record.scope,
          [Header.Subject]: record.subject,
          [Header.DeadAttempts]: record.attempts,
          [Header.DeadError]: oneLine(`${record.error.name}: ${record.error.message}`),
          [Header.DeadType]: typeOf(record.body),
          [Header.DeadTime]: Date.now(),
        },
      },
      record.body,
    );
  }

  async list(query: DeadLetterQuery = {}): Promise<DeadLetterPage> {
    const limit = query.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`dead letters: limit must be an integer >= 1, got ${limit}`);
    const after = query.after === undefined ? -1 : Number(query.after);
    if (!Number.isSafeInteger(after) || after < -1 || query.after === '') {
      throw new Error(`dead letters: after must be the ref of a dead letter, got ${JSON.stringify(query.after)}`);
    }
    const live = await this.liveLetters(after + 1);
    const letters = live.slice(0, limit).map((s) => s.letter);
    return { letters, next: live.length > limit ? letters[letters.length - 1].ref : undefined };
  }

  async count(): Promise<number> {
    return (await this.liveLetters(0)).length;
  }

  /** Sends letters back to the queue that gave up on them and marks them replayed; they are dead-lettered again if they fail again. */
  async replay(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const wanted = new Set(letters.map((l) => l.ref));
    const from = Math.min(...letters.map((l) => Number(l.ref)).filter(Number.isSafeInteger));
    const stored = (await this.liveLetters(Number.isSafeInteger(from) ? from : 0)).filter((s) => wanted.has(s.letter.ref));
    const { send } = this.clients();
    const failures: string[] = [];
    for (const { letter, queue, message } of stored) {
      if (!(await queueExists(this.clients().connection, queue))) {
        failures.push(`${letter.id || letter.ref}: its queue ${queue} no longer exists`);
        continue;
      }
      await send(
        {
          routingKey: queue,
          durable: true,
          messageId: message.messageId,
          contentType: message.contentType,
          headers: { [Header.Subject]: letter.subject, ...(typeof h(message)[Header.Target] === 'string' ? { [Header.Target]: h(message)[Header.Target] } : {}) },
        },
        bodyOf(message),
      );
      await send({ routingKey: this.topology.deadLetterStream, durable: true, headers: { [Header.Replayed]: Number(letter.ref) } }, NO_BODY);
    }
    if (failures.length > 0) throw new Error(`dead letters: cannot replay ${failures.join('; ')}`);
  }

  /** The letters from an offset on that were not replayed, oldest first. */
  private async liveLetters(from: number): Promise<StoredLetter[]> {
    const letters = new Map<number, StoredLetter>();
    await this.read(from, (message, offset) => {
      const h = message.headers ?? {};
      if (h[Header.Replayed] !== undefined) letters.delete(count(h[Header.Replayed]));
      else {
        const stored = this.toLetter(message, offset);
        if (stored) letters.set(offset, stored);
      }
    });
    return [...letters.values()];
  }

  private toLetter(message: AsyncMessage, offset: number): StoredLetter | undefined {
    const h = message.headers ?? {};
    const ours = typeof h[Header.DeadQueue] === 'string';
    const brokerQueue = h['x-first-death-queue'];
    if (!ours && typeof brokerQueue !== 'string') return undefined; // a marker, or nothing of ours
    const queue = ours ? (h[Header.DeadQueue] as string) : (brokerQueue as string);
    const death = Array.isArray(h['x-death']) ? (h['x-death'][0] as Record<string, unknown> | undefined) : undefined;
    const routingKeys = Array.isArray(death?.['routing-keys']) ? (death['routing-keys'] as unknown[]) : [];
    const time = ours ? count(h[Header.DeadTime]) : count(message.timestamp) * 1000;
    return {
      queue,
      message,
      letter: {
        ref: String(offset),
        id: oneLine(message.messageId, 256),
        type: oneLine(h[Header.DeadType], 256) || typeOf(bodyOf(message)),
        group: ours ? oneLine(h[Header.DeadScope], 256) : this.topology.scopeOfQueue(queue),
        subject: oneLine(h[Header.Subject] ?? routingKeys[0], 256),
        attempts: ours ? count(h[Header.DeadAttempts]) : count(h[Header.Attempts]) + count(h['x-delivery-count']),
        error: ours
          ? oneLine(h[Header.DeadError])
          : `dead-lettered by RabbitMQ (${oneLine(h['x-first-death-reason'], 64)}): delivered too often without an acknowledgement (consumers crashed or lost their connection)`,
        time: new Date(time),
      },
    };
  }

  private read(from: number, visit: (message: AsyncMessage, offset: number) => void): Promise<void> {
    const { connection, send } = this.clients();
    return readStream(connection, send, this.topology.deadLetterStream, from, visit).catch((error: Error) => {
      throw new Error(`dead letters: ${error.message}`, { cause: error });
    });
  }

  private clients(): { connection: Connection; send: ConfirmedSend } {
    if (!this.connection || !this.send) throw new Error('dead letters: the RabbitMQ transport is not connected');
    return { connection: this.connection, send: this.send };
  }
}

const h = (message: AsyncMessage): Record<string, unknown> => message.headers ?? {};

/** The body as bytes, whatever the client made of it (it parses `application/json` and `text/plain`). */
export function bodyOf(message: { body: unknown }): Buffer {
  const { body } = message;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  return Buffer.from(JSON.stringify(body) ?? '');
}
