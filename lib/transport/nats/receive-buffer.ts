import type { Logger } from '@nestjs/common';
import { deferred, type Deferred } from '../../deferred.js';
import type { MessageHeaders, TransportMessageHandler } from '../event-transport.js';
import { EndOfTurn } from './end-of-turn.js';

/** What the buffer may hold: received messages waiting for their handlers. */
export interface ReceiveBufferLimits {
  readonly messages: number;
  readonly bytes: number;
}

/** One subscription's handler; messages still buffered for it are skipped once it unsubscribed. */
export interface BufferedSubscriber {
  readonly handler: TransportMessageHandler;
  active: boolean;
}

/** Handler time per event-loop turn before further messages wait for the next turn (and the socket is read again). */
const TURN_BUDGET_MS = 5;
/** Handled entries at the front of the queue are cut off once there are this many (and more than live ones). */
const COMPACT_AT = 4096;
const ignore = () => undefined;

/**
 * Between the NATS connection and the handlers. nats.js calls a subscription's callback inside its
 * parser, so handlers that take the CPU stop the socket from being read; the server then buffers for
 * this connection until it cuts it as a slow consumer — losing everything pending, with no word to the
 * client. Here handlers run at once while they take less than a few milliseconds per turn; past that,
 * messages wait in a bounded queue, handled in later turns in order, so that the socket keeps being
 * read. When the queue is full new messages are dropped: counted, and reported once per episode.
 */
export class ReceiveBuffer {
  private readonly subscribers: BufferedSubscriber[] = [];
  private readonly subjects: string[] = [];
  private readonly payloads: Uint8Array[] = [];
  private readonly headers: (MessageHeaders | undefined)[] = [];
  private head = 0;
  private bytes = 0;
  /** When handlers started taking this turn's time, or -1 in a turn that ran none yet. */
  private turnStarted = -1;
  private readonly nextTurn = new EndOfTurn(() => this.onTurn());
  private droppedThisEpisode = 0;
  private idle?: Deferred;
  /** Messages dropped because the queue was full. */
  dropped = 0;
  /** Episodes of handlers falling so far behind that messages were dropped. */
  slowConsumers = 0;

  constructor(
    private readonly limits: ReceiveBufferLimits,
    private readonly logger: Logger,
  ) {}

  get queued(): number {
    return this.subjects.length - this.head;
  }

  /** Runs the handler now, or queues the message behind those waiting, or drops it when the queue is full. */
  deliver(subscriber: BufferedSubscriber, subject: string, payload: Uint8Array, headers: MessageHeaders | undefined): void {
    if (this.head === this.subjects.length) {
      const now = performance.now();
      if (this.turnStarted < 0) {
        this.turnStarted = now;
        this.nextTurn.schedule();
      }
      if (now - this.turnStarted < TURN_BUDGET_MS) return this.run(subscriber, subject, payload, headers);
    }
    if (this.queued >= this.limits.messages || this.bytes + payload.length > this.limits.bytes) return this.drop(subject);
    this.subscribers.push(subscriber);
    this.subjects.push(subject);
    this.payloads.push(payload);
    this.headers.push(headers);
    this.bytes += payload.length;
    this.nextTurn.schedule();
  }

  /** Resolves once every queued message was handled. */
  drained(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return (this.idle ??= deferred()).promise;
  }

  /** Gives up what is still queued (a close that could not wait any longer): counted as dropped. */
  discard(why: string): void {
    const left = this.queued;
    if (left === 0) return;
    this.dropped += left;
    this.clear();
    this.logger.error(`dropped ${left} received messages whose handlers had not run yet: ${why}`);
  }

  private run(subscriber: BufferedSubscriber, subject: string, payload: Uint8Array, headers: MessageHeaders | undefined): void {
    if (!subscriber.active) return;
    try {
      // Handlers log and count their own failures; core NATS has no redelivery to ask for.
      subscriber.handler(subject, payload, 1, headers)?.catch(ignore);
    } catch (error) {
      this.logger.error(`a handler of ${subject.slice(0, 128)} threw: ${(error as Error).message}`, (error as Error).stack);
    }
  }

  private drop(subject: string): void {
    this.dropped++;
    if (this.droppedThisEpisode++ > 0) return;
    this.slowConsumers++;
    this.logger.warn(
      `slow consumer: handlers fall behind the messages arriving (now on ${subject.slice(0, 128)}); the receive buffer is full ` +
        `(${this.queued} messages, ${this.bytes} bytes; nats.receiveBufferMessages / NATS_RECEIVE_BUFFER_MESSAGES: ${this.limits.messages}, ` +
        `nats.receiveBufferBytes / NATS_RECEIVE_BUFFER_BYTES: ${this.limits.bytes}): new messages are dropped until they catch up`,
    );
  }

  /** A new turn: the queue's turn first, within the budget; what is left waits for the next one. */
  private onTurn(): void {
    this.turnStarted = -1;
    if (this.queued === 0) return;
    const started = (this.turnStarted = performance.now());
    const { subscribers, subjects, payloads, headers } = this;
    while (this.head < subjects.length) {
      const i = this.head++;
      this.bytes -= payloads[i].length;
      this.run(subscribers[i], subjects[i], payloads[i], headers[i]);
      if (performance.now() - started >= TURN_BUDGET_MS) break;
    }
    if (this.queued > 0) {
      if (this.head >= COMPACT_AT && this.head > this.queued) this.compact();
      this.nextTurn.schedule();
      return;
    }
    this.clear();
    this.turnStarted = -1;
    if (this.droppedThisEpisode > 0) {
      this.logger.warn(`slow consumer: handlers caught up after ${this.droppedThisEpisode} messages were dropped (${this.dropped} in all)`);
      this.droppedThisEpisode = 0;
    }
  }

  private compact(): void {
    this.subscribers.splice(0, this.head);
    this.subjects.splice(0, this.head);
    this.payloads.splice(0, this.head);
    this.headers.splice(0, this.head);
    this.head = 0;
  }

  private clear(): void {
    this.subscribers.length = this.subjects.length = this.payloads.length = this.headers.length = 0;
    this.head = 0;
    this.bytes = 0;
    const idle = this.idle;
    this.idle = undefined;
    idle?.resolve();
  }
}
