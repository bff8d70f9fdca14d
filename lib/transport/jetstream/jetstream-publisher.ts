import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { PubAck } from '@nats-io/jetstream';
import { IdleSignal } from '../../delivery/idle-signal.js';
import { PublishTimeoutError, TransportClosedError } from '../event-transport.js';
import { backoffMs, isTransient, transientReason } from './jetstream-errors.js';
import type { PubAcks } from './jetstream-pub-acks.js';
import type { LeadershipReport, PublisherStatus } from './jetstream-status.js';

/** The header of the id the stream's duplicate window recognises. */
const MSG_ID = 'Nats-Msg-Id';

/** The longest one attempt waits for its ack: a leader killed mid-request never answers, so ask again soon. */
const ATTEMPT_TIMEOUT_MS = 2_000;
/** The least: a last attempt near the deadline still gets the time for an answer (it may end this much past the deadline). */
const MIN_ATTEMPT_TIMEOUT_MS = 250;

/**
 * Publishes to JetStream through leader elections, rolling restarts and reconnects: a publish is sent
 * again (same Nats-Msg-Id, with backoff) while the failure is transient, until the stream stores it or
 * its deadline passes. At most `window` publishes are in flight; more wait for a slot, so that a stream
 * without a leader costs bounded memory and no retry storm.
 */
export class JetStreamPublisher {
  private inFlight = 0;
  private retrying = 0;
  /** Publishes waiting for a slot, oldest first, from `head` on. */
  private waiters: ((closed?: Error) => void)[] = [];
  private head = 0;
  private readonly backoffs = new Set<{ timer: NodeJS.Timeout; wake: (closed?: Error) => void }>();
  private closed?: Error;
  private readonly idle = new IdleSignal();

  constructor(
    private readonly acks: PubAcks,
    private readonly deadlineMs: number,
    private readonly window: number,
    private readonly leadership: LeadershipReport,
  ) {}

  /** Resolves once the stream stored the event (a duplicate id within the window counts as stored). */
  publish(subject: string, payload: Uint8Array, id: string, extraHeaders: MsgHdrs | undefined): Promise<PubAck> {
    const started = Date.now();
    const headers = extraHeaders ?? natsHeaders();
    headers.set(MSG_ID, id);
    if (this.inFlight < this.window) {
      this.inFlight++;
      return this.attempt(subject, payload, headers, started, 0);
    }
    return new Promise<void>((resolve, reject) => this.waiters.push((closed) => (closed ? reject(closed) : resolve()))).then(() =>
      this.attempt(subject, payload, headers, started, 0),
    );
  }

  status(): PublisherStatus {
    return { inFlight: this.inFlight, waiting: this.waiters.length - this.head, retrying: this.retrying };
  }

  /** Resolves once nothing is in flight or waiting, or after the timeout; false then. */
  settled(timeoutMs: number): Promise<boolean> {
    return this.inFlight === 0 ? Promise.resolve(true) : this.idle.wait(timeoutMs);
  }

  /** Rejects what waits for a slot, a retry or an ack, naming why. */
  close(why: string): void {
    this.closed = new TransportClosedError(why);
    this.acks.close(this.closed);
    for (const backoff of this.backoffs) {
      clearTimeout(backoff.timer);
      backoff.wake(this.closed);
    }
    this.backoffs.clear();
    for (let i = this.head; i < this.waiters.length; i++) this.waiters[i]!(this.closed);
    this.waiters = [];
    this.head = 0;
  }

  private attempt(subject: string, payload: Uint8Array, headers: MsgHdrs, started: number, n: number): Promise<PubAck> {
    const timeout = Math.min(ATTEMPT_TIMEOUT_MS, Math.max(MIN_ATTEMPT_TIMEOUT_MS, started + this.deadlineMs - Date.now()));
    return this.acks.publish(subject, payload, headers, timeout).then(
      (ack) => {
        if (n > 0) this.retrying--;
        this.release();
        this.leadership.led();
        return ack;
      },
      (error: Error) => this.failed(subject, payload, headers, started, n, error),
    );
  }

  private async failed(subject: string, payload: Uint8Array, headers: MsgHdrs, started: number, n: number, error: Error): Promise<PubAck> {
    const remaining = started + this.deadlineMs - Date.now();
    if (this.closed || !isTransient(error) || remaining <= 0) {
      if (n > 0) this.retrying--;
      this.release();
      if (this.closed || !isTransient(error)) throw this.closed ?? error;
      throw new PublishTimeoutError(
        `the stream did not store ${subject} within ${this.deadlineMs} ms (${n + 1} attempts, the last: ${transientReason(error)}): ` +
          'no stream leader answered (an election still running, the nodes holding the stream down, ' +
          'or no stream captures the subject); raise jetstream.publishTimeoutMs (EVENT_BUS_PUBLISH_TIMEOUT_MS) to wait longer',
        { cause: error },
      );
    }
    if (n === 0) this.retrying++;
    this.leadership.leaderless(error);
    try {
      await this.backoff(Math.min(backoffMs(n), remaining));
    } catch (closed) {
      this.retrying--;
      this.release();
      throw closed;
    }
    return this.attempt(subject, payload, headers, started, n + 1);
  }

  /** Waits before a retry; rejects when the publisher is closed meanwhile. */
  private backoff(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const backoff = {
        timer: setTimeout(() => {
          this.backoffs.delete(backoff);
          resolve();
        }, ms),
        wake: (closed?: Error) => (closed ? reject(closed) : resolve()),
      };
      this.backoffs.add(backoff);
    });
  }

  /** Hands the slot to the oldest waiting publish, or frees it. */
  private release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head++] = undefined as never;
      if (this.head > 1_024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      next();
      return;
    }
    this.inFlight--;
    if (this.inFlight === 0) this.idle.notify();
  }
}
