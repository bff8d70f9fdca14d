import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { IdleSignal } from '../../delivery/idle-signal.js';

const ACK = new TextEncoder().encode('+ACK');
/** An ack unconfirmed for this long is sent again: the consumer leader it went to may be gone. */
const RESEND_MS = 1_000;

interface PendingAck {
  readonly reply: string;
  readonly firstSent: number;
  lastSent: number;
}

/**
 * Acks the consumer confirms. A plain ack is fire-and-forget: one sent to a consumer leader that just
 * died is lost, its message is redelivered after the ack wait (handled twice, and holding one of the
 * consumer's max_ack_pending slots meanwhile). An ack confirmed here asks for the server's reply and is
 * sent again every second until one comes (the new leader's), for up to the ack wait; acking a message
 * again is harmless. Replies arrive on one subscription; one timer checks every pending ack, so that an
 * ack costs no timer of its own. A confirmation costs a reply per ack: consumers use it only around a
 * recovery (see DurableConsumer.ack).
 */
export class ConfirmedAcks {
  private readonly pending = new Map<string, PendingAck>();
  private readonly prefix: string;
  private readonly subscription: Subscription;
  private next = 0;
  private ticker?: NodeJS.Timeout;
  private readonly settledSignal = new IdleSignal();
  /** Acks never confirmed within the ack wait (their messages are redelivered). */
  unconfirmed = 0;

  constructor(
    private readonly connection: NatsConnection,
    private readonly ackWaitMs: number,
  ) {
    const inbox = createInbox();
    this.prefix = `${inbox}.`;
    this.subscription = connection.subscribe(`${inbox}.*`, {
      callback: (error, reply) => {
        if (error || !this.pending.delete(reply.subject.slice(this.prefix.length))) return;
        if (this.pending.size === 0) this.settledSignal.notify();
      },
    });
  }

  /** Acks a message by its reply subject; confirmed (or given up) in the background. */
  confirm(reply: string): void {
    const token = (this.next++).toString(36);
    const now = Date.now();
    this.pending.set(token, { reply, firstSent: now, lastSent: now });
    this.send(reply, token);
    this.ticker ??= setInterval(() => this.resend(), RESEND_MS / 2).unref();
  }

  /** Resolves once every ack is confirmed or given up, or after the timeout. */
  async settled(timeoutMs: number): Promise<void> {
    if (this.pending.size > 0) await this.settledSignal.wait(timeoutMs);
  }

  close(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.subscription.unsubscribe();
  }

  private send(reply: string, token: string): void {
    try {
      this.connection.publish(reply, ACK, { reply: this.prefix + token });
    } catch {
      // closed or draining: the message is redelivered after the ack wait
    }
  }

  private resend(): void {
    const now = Date.now();
    for (const [token, ack] of this.pending) {
      if (now - ack.lastSent < RESEND_MS) break; // in sending order: the rest were sent later still
      if (now - ack.firstSent >= this.ackWaitMs) {
        // Redelivered by now anyway: whoever gets it, the idempotency record may still recognise it.
        this.pending.delete(token);
        this.unconfirmed++;
        continue;
      }
      ack.lastSent = now;
      // Moved to the end, so that the map stays in sending order.
      this.pending.delete(token);
      this.pending.set(token, ack);
      this.send(ack.reply, token);
    }
    if (this.pending.size === 0) {
      clearInterval(this.ticker);
      this.ticker = undefined;
      this.settledSignal.notify();
    }
  }
}
