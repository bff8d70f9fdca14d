import { Logger } from '@nestjs/common';
import type { DeliveryOptions } from './delivery-options.js';
import type { IdempotencyStore } from './idempotency-store.js';
import { IdleSignal } from './idle-signal.js';
import type { RetryPolicy } from './retry-policy.js';

/** One delivered message, as a durable transport hands it to the delivery. */
export interface DurableMessage {
  /** The event id when the transport knows it without decoding (a header); handled ids are recorded by it. Read only when needed. */
  readonly eventId: string | undefined;
  /** Deliveries of this message so far, this one included (from 1). */
  readonly deliveryCount: number;
  ack(): void | Promise<void>;
  /** Has the broker deliver the message again after the delay (0: at once, to any member). */
  retryLater(delayMs: number): void | Promise<void>;
  /** Stores the message with why it failed and takes it out of delivery; when it cannot be stored, it is delivered again. */
  deadLetter(attempts: number, error: Error): Promise<void>;
  /** Tells the broker the message is still being worked on; absent where the broker needs no such word. */
  keepAlive?(): void;
}

/** Runs the handlers for one delivery attempt; rejects when one of them failed. */
export type AttemptRunner = (attempt: number) => Promise<unknown> | undefined;

/** An attempt whose handlers ran past their timeout: it counts as failed (retried, then dead-lettered). */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';
}

/** A handler that runs long, as status() shows it. */
export interface SlowHandler {
  readonly consumer: string;
  readonly eventId: string | undefined;
  readonly attempt: number;
  readonly runningMs: number;
  /**
   * True once its attempt timed out or was abandoned at shutdown: its message went on, but its promise
   * has not settled (a handler cannot be cancelled; it is ignored when it settles).
   */
  readonly abandoned: boolean;
}

export interface DeliveryStatus {
  /** Deliveries being handled now. */
  readonly inFlight: number;
  /** Attempts failed by their timeout so far. */
  readonly timedOut: number;
  /** Handlers past half their timeout, and abandoned ones still running; the oldest first, at most SLOW_LISTED. */
  readonly slow: readonly SlowHandler[];
}

/** How many slow handlers status() lists, and how many abandoned ones are remembered until they settle. */
const SLOW_LISTED = 20;
const MAX_STRAYS = 1_000;

/** An id from the wire, quoted, escaped and cut before it reaches a log. */
const wireValue = (id: string | undefined) => (id === undefined ? 'a message' : JSON.stringify(id.slice(0, 128)));

/** Why an attempt ended without an outcome of its own: the delivery stopped, and its message was handed back. */
const ABANDONED: unique symbol = Symbol('abandoned');

/** A handler that ran past its timeout or was abandoned, until its promise settles. */
interface Stray {
  readonly consumer: string;
  readonly eventId: string | undefined;
  readonly attempt: number;
  readonly startedAt: number;
}

/**
 * One delivery whose handlers run (or, ordered, wait to run again): kept alive with the broker, failed
 * when an attempt runs past its timeout, and handed back when the delivery stops. Checked by the
 * delivery's one ticker, so that a delivery costs no timer of its own.
 */
class Supervised {
  attempt = 0;
  startedAt = 0;
  /** When the running attempt times out; Infinity while none runs. */
  deadline = Infinity;
  nextKeepAlive: number;
  private work?: Promise<unknown>;
  /** Ends the attempt or the pause under way, with an error (or none: the pause is over). */
  private settle?: (error?: unknown) => void;

  constructor(
    readonly message: DurableMessage,
    readonly consumer: string,
    keepAliveMs: number,
    private readonly strays: Set<Stray>,
  ) {
    this.nextKeepAlive = Date.now() + keepAliveMs;
  }

  get running(): boolean {
    return this.deadline !== Infinity;
  }

  /** Settles as the handlers do, unless end() fails the attempt first (a timeout, or ABANDONED). */
  watch(work: Promise<unknown>, attempt: number, timeoutMs: number): Promise<void> {
    this.attempt = attempt;
    this.startedAt = Date.now();
    this.deadline = this.startedAt + timeoutMs;
    this.work = work;
    return new Promise((resolve, reject) => {
      const settle = (error?: unknown) => {
        this.settle = undefined;
        this.deadline = Infinity;
        if (error === undefined) resolve();
        else reject(error);
      };
      this.settle = settle;
      work.then(
        () => this.settle === settle && settle(),
        (error) => this.settle === settle && settle(error ?? new Error('handler rejected without a reason')),
      );
    });
  }

  /** Waits before an ordered retry (still kept alive); resolves false when end() cut it short. */
  pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle?.(), ms);
      this.settle = (error?: unknown) => {
        clearTimeout(timer);
        this.settle = undefined;
        resolve(error === undefined);
      };
    });
  }

  /** Fails the attempt or ends the pause under way; false when there is none. A failed attempt's promise stays a stray until it settles. */
  end(error: unknown): boolean {
    const settle = this.settle;
    if (!settle) return false;
    if (this.running && this.strays.size < MAX_STRAYS) {
      const stray: Stray = { consumer: this.consumer, eventId: this.message.eventId, attempt: this.attempt, startedAt: this.startedAt };
      this.strays.add(stray);
      const forget = () => this.strays.delete(stray);
      this.work!.then(forget, forget);
    }
    settle(error);
    return true;
  }
}

/**
 * How every durable transport delivers a message: the idempotency record first, then the handlers,
 * then ack, retry later or dead-letter as the retry policy decides. Ordered subscriptions retry in
 * place, so that no later event overtakes a failing one. Every attempt is bounded by its handler
 * timeout, and every delivery by stop(): a hung handler stalls neither its consumer nor shutdown.
 */
export class DurableDelivery {
  private readonly supervised = new Set<Supervised>();
  private readonly strays = new Set<Stray>();
  private ticker?: NodeJS.Timeout;
  private inFlight = 0;
  private timedOut = 0;
  private stopped = false;
  private readonly idle = new IdleSignal();

  constructor(
    private readonly retry: RetryPolicy,
    private readonly inbox: IdempotencyStore | undefined,
    /** How often a running handler's message is kept alive (see DurableMessage.keepAlive). */
    private readonly keepAliveMs: number,
    /** Why a delivery past its attempts is dead-lettered unrun: its earlier deliveries were never acknowledged. */
    private readonly unacknowledged: (deliveries: number) => string,
    private readonly logger: Pick<Logger, 'warn'> = new Logger('EventBus'),
  ) {}

  async deliver(message: DurableMessage, consumer: string, delivery: DeliveryOptions, run: AttemptRunner): Promise<void> {
    if (this.stopped) return message.retryLater(0);
    this.inFlight++;
    try {
      await this.handle(message, consumer, delivery, run);
    } finally {
      if (--this.inFlight === 0) this.idle.notify();
    }
  }

  /**
   * Stops delivering: running deliveries may finish within the timeout; those still running then are
   * abandoned, their messages handed back at once (retryLater(0)) for another member to take. Resolves
   * with how many were abandoned. Their handlers' promises are not waited for: nothing of the
   * delivery's keeps the process alive.
   */
  async stop(timeoutMs: number): Promise<number> {
    this.stopped = true;
    if (this.inFlight > 0) await this.idle.wait(timeoutMs);
    let abandoned = 0;
    for (const supervised of this.supervised) if (supervised.end(ABANDONED)) abandoned++;
    if (this.inFlight > 0) await this.idle.wait(timeoutMs);
    this.stopTicker();
    return abandoned;
  }

  status(): DeliveryStatus {
    const now = Date.now();
    const slow: SlowHandler[] = [];
    for (const stray of this.strays) {
      if (slow.length === SLOW_LISTED) break;
      slow.push({ consumer: stray.consumer, eventId: stray.eventId, attempt: stray.attempt, runningMs: now - stray.startedAt, abandoned: true });
    }
    for (const s of this.supervised) {
      if (slow.length === SLOW_LISTED) break;
      if (s.running && now - s.startedAt >= (s.deadline - s.startedAt) / 2) {
        slow.push({ consumer: s.consumer, eventId: s.message.eventId, attempt: s.attempt, runningMs: now - s.startedAt, abandoned: false });
      }
    }
    return { inFlight: this.inFlight, timedOut: this.timedOut, slow };
  }

  private async handle(message: DurableMessage, consumer: string, delivery: DeliveryOptions, run: AttemptRunner): Promise<void> {
    const id = this.inbox ? message.eventId : undefined;
    if (id && this.inbox && (await this.inbox.seen(consumer, id))) return message.ack();
    const delivered = message.deliveryCount;
    if (this.retry.exhausted(delivered, delivery)) {
      return message.deadLetter(delivered - 1, new Error(this.unacknowledged(delivered - 1)));
    }
    // Created only for handlers that do not finish at once: a synchronous handler costs no supervision.
    let supervised: Supervised | undefined;
    try {
      for (let attempt = delivered; ; attempt++) {
        try {
          const work = run(attempt);
          if (work) await (supervised ??= this.supervise(message, consumer)).watch(work, attempt, this.retry.timeoutMs(delivery));
          break;
        } catch (error) {
          if (error === ABANDONED) return await message.retryLater(0);
          const decision = this.retry.afterFailure(attempt, error, delivery);
          if (decision.action === 'dead-letter') return await message.deadLetter(attempt, error instanceof Error ? error : new Error(String(error)));
          if (!delivery.ordered) return await message.retryLater(decision.delayMs);
          if (!(await (supervised ??= this.supervise(message, consumer)).pause(decision.delayMs))) return await message.retryLater(0);
        }
      }
      if (id && this.inbox) await this.inbox.record(consumer, id);
      await message.ack();
    } finally {
      if (supervised) this.supervised.delete(supervised);
    }
  }

  private supervise(message: DurableMessage, consumer: string): Supervised {
    const supervised = new Supervised(message, consumer, this.keepAliveMs, this.strays);
    this.supervised.add(supervised);
    // One ticker for every supervised delivery, unref'd: it never keeps a stopping process alive.
    this.ticker ??= setInterval(() => this.tick(), Math.min(1_000, Math.max(50, this.keepAliveMs / 2))).unref();
    return supervised;
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.supervised) {
      if (now >= s.deadline) {
        this.timedOut++;
        const ms = s.deadline - s.startedAt;
        this.logger.warn(
          `${s.consumer}: handlers of ${wireValue(s.message.eventId)} still running after ${ms} ms (attempt ${s.attempt}): ` +
            'the attempt counts as failed; a handler cannot be cancelled, its promise is ignored when it settles',
        );
        s.end(new HandlerTimeoutError(`handlers did not settle within ${ms} ms (attempt ${s.attempt})`));
      } else if (now >= s.nextKeepAlive) {
        s.message.keepAlive?.();
        s.nextKeepAlive = now + this.keepAliveMs;
      }
    }
    if (this.supervised.size === 0) this.stopTicker();
  }

  private stopTicker(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }
}
