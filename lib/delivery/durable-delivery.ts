import type { DeliveryOptions } from './delivery-options.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { RetryPolicy } from './retry-policy.js';

/** One delivered message, as a durable transport hands it to the delivery. */
export interface DurableMessage {
  /** The event id when the transport knows it without decoding (a header); handled ids are recorded by it. */
  readonly eventId: string | undefined;
  /** Deliveries of this message so far, this one included (from 1). */
  readonly deliveryCount: number;
  ack(): void | Promise<void>;
  /** Has the broker deliver the message again after the delay. */
  retryLater(delayMs: number): void | Promise<void>;
  /** Stores the message with why it failed and takes it out of delivery; when it cannot be stored, it is delivered again. */
  deadLetter(attempts: number, error: Error): Promise<void>;
  /** Tells the broker the message is still being worked on; absent where the broker needs no such word. */
  keepAlive?(): void;
}

/** Runs the handlers for one delivery attempt; rejects when one of them failed. */
export type AttemptRunner = (attempt: number) => Promise<unknown> | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How every durable transport delivers a message: the idempotency record first, then the handlers,
 * then ack, retry later or dead-letter as the retry policy decides. Ordered subscriptions retry in
 * place, so that no later event overtakes a failing one.
 */
export class DurableDelivery {
  constructor(
    private readonly retry: RetryPolicy,
    private readonly inbox: IdempotencyStore | undefined,
    /** How often a running handler's message is kept alive (see DurableMessage.keepAlive). */
    private readonly keepAliveMs: number,
    /** Why a delivery past its attempts is dead-lettered unrun: its earlier deliveries were never acknowledged. */
    private readonly unacknowledged: (deliveries: number) => string,
  ) {}

  async deliver(message: DurableMessage, consumer: string, delivery: DeliveryOptions, run: AttemptRunner): Promise<void> {
    const id = message.eventId;
    if (id && this.inbox && (await this.inbox.seen(consumer, id))) return message.ack();
    const delivered = message.deliveryCount;
    if (this.retry.exhausted(delivered, delivery)) {
      return message.deadLetter(delivered - 1, new Error(this.unacknowledged(delivered - 1)));
    }
    const keepAlive = message.keepAlive ? setInterval(() => message.keepAlive!(), this.keepAliveMs) : undefined;
    try {
      for (let attempt = delivered; ; attempt++) {
        try {
          await run(attempt);
          break;
        } catch (error) {
          const decision = this.retry.afterFailure(attempt, error, delivery);
          if (decision.action === 'dead-letter') return await message.deadLetter(attempt, error instanceof Error ? error : new Error(String(error)));
          if (!delivery.ordered) return await message.retryLater(decision.delayMs);
          await sleep(decision.delayMs);
        }
      }
      if (id && this.inbox) await this.inbox.record(consumer, id);
      await message.ack();
    } finally {
      clearInterval(keepAlive);
    }
  }
}
