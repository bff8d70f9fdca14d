import type { Logger } from '@nestjs/common';
import type { MsgHdrsImpl, NatsConnection } from '@nats-io/transport-node';
import { deferred, type Deferred } from '../../deferred.js';
import type { MessageHeaders } from '../event-transport.js';
import { EndOfTurn } from './end-of-turn.js';
import { headerBytes, natsHeaders } from './nats-headers.js';

/** A publish refused because the buffer of unconfirmed publishes is at its bound. */
export class PublishBufferFullError extends Error {
  override readonly name = 'PublishBufferFullError';
}

/** What the buffer may hold: accepted publishes the server has not confirmed yet. */
export interface PublishBufferLimits {
  readonly messages: number;
  readonly bytes: number;
}

/**
 * When a publish's promise settles: once the buffer took it (`buffer`, the default), or once the
 * server confirmed the batch it went out in (`server`: a round trip per batch).
 */
export type PublishConfirm = 'buffer' | 'server';

/** A batch is handed to the connection once it holds this many bytes, without waiting for the end of the turn. */
const HAND_OFF_BYTES = 64 * 1024;
/** `PUB <subject> <size>\r\n` and the payload's `\r\n`: what a message costs besides its subject and payload. */
const FRAMING_BYTES = 16;
/** The server closes the connection for a control line longer than this (`max_control_line`, not in INFO). */
const MAX_CONTROL_LINE = 4096;
/** Subjects this short fit the control line whatever their characters (3 UTF-8 bytes per UTF-16 unit at most). */
const SHORT_SUBJECT = Math.floor((MAX_CONTROL_LINE - 16) / 3);
const WHITESPACE = /[ \t\r\n]/;
/**
 * Small batches are confirmed together, at most this long after they went out: at low rates a PING per
 * batch would double the packets of publisher and server. Large ones, a heavy buffer, a flush() and
 * `server` mode get their PING at once.
 */
const CONFIRM_WITHIN_MS = 20;
const ignore = () => undefined;

/** Publishes that go out together, and are confirmed together by the PONG of the flush that follows them. */
class Batch {
  readonly subjects: string[] = [];
  readonly payloads: Uint8Array[] = [];
  /** Per publish, its headers (binary-mode CloudEvents), or undefined. */
  readonly headers: (MsgHdrsImpl | undefined)[] = [];
  bytes = 0;
  /** Hand-offs so far: a confirmation of an earlier one, before a reconnect, is ignored. */
  sends = 0;
  private settle?: Deferred;

  /** Settles once the server confirmed this batch (and so every batch before it), or it was given up. */
  confirmation(): Promise<void> {
    if (!this.settle) {
      this.settle = deferred();
      this.settle.promise.catch(() => undefined); // whoever waits sees the rejection; nobody has to wait
    }
    return this.settle.promise;
  }

  confirmed(): void {
    this.settle?.resolve();
  }

  givenUp(error: Error): void {
    this.settle?.reject(error);
  }
}

/**
 * @internal
 * Publishes accepted but not yet confirmed by the server, per connection. nats.js writes each
 * publish made in its own microtask as one socket write (an awaited publish loop: a write per event),
 * and discards its outbound buffer on every reconnect attempt; this buffer fixes both. `accept()`
 * validates what the server or nats.js would refuse, and enqueues. The first publish of an event-loop
 * turn goes to nats.js in a microtask, as it would alone; the rest of the turn's go together at its end
 * (or at 64 KiB): one synchronous burst — a socket write per 32 KiB. A flush right behind them (at once,
 * or for small batches within 20 ms) is their confirmation. Unconfirmed batches stay buffered: after a disconnect
 * nothing is handed off, and on reconnect they go out again first, in order (so an event may arrive
 * twice: at least once across reconnects). At the bound publishes are refused, never accepted ones evicted.
 */
export class PublishBuffer {
  /** Unconfirmed batches, oldest first; the last one may still be filling. */
  private readonly batches: Batch[] = [];
  private filling?: Batch;
  /** Batches sent and not yet covered by a PING. */
  private unpinged: Batch[] = [];
  private pingTimer?: NodeJS.Timeout;
  private messages = 0;
  private bytes = 0;
  private connected = true;
  private closed = false;
  private readonly endOfTurn = new EndOfTurn(() => this.onTurnEnd());
  /** Settles at the end of this turn: what a publish returns while the buffer is heavy (see accept()). */
  private turnEnd?: Deferred;
  private maxPayload: number;
  private readonly heavyMessages: number;
  private readonly heavyBytes: number;
  /** Publishes refused since the buffer last became full (reported once per episode). */
  private rejectedWhileFull = 0;
  rejected = 0;
  resent = 0;
  lost = 0;

  constructor(
    private readonly connection: NatsConnection,
    private readonly limits: PublishBufferLimits,
    private readonly confirm: PublishConfirm,
    private readonly logger: Logger,
  ) {
    this.maxPayload = connection.info?.max_payload ?? 1024 * 1024;
    this.heavyMessages = Math.min(4096, Math.ceil(limits.messages / 2));
    this.heavyBytes = Math.min(1024 * 1024, Math.ceil(limits.bytes / 2));
  }

  get bufferedMessages(): number {
    return this.messages;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /**
   * Takes a publish or throws saying why not. Returns undefined once it is buffered; a promise
   * when it is to settle later: in `server` mode once the server confirmed it, and while the
   * buffer is heavy at the end of the turn, so that an awaited publish loop lets the connection
   * read the server's confirmations instead of filling the buffer to its bound.
   */
  accept(subject: string, payload: Uint8Array, headers?: MessageHeaders): Promise<void> | undefined {
    if (subject.length === 0 || WHITESPACE.test(subject)) throw new Error(`cannot publish to ${JSON.stringify(subject)}: not a NATS subject`);
    const headerSize = headers ? headerBytes(headers) : 0;
    if (payload.length + headerSize > this.maxPayload) {
      throw new Error(`cannot publish to ${subject}: ${payload.length + headerSize} bytes exceed the server's max_payload of ${this.maxPayload}`);
    }
    if (subject.length > SHORT_SUBJECT && Buffer.byteLength(subject) + 12 > MAX_CONTROL_LINE) {
      throw new Error(`cannot publish to a subject of ${Buffer.byteLength(subject)} bytes: the server's control line holds ${MAX_CONTROL_LINE}`);
    }
    const size = subject.length + payload.length + headerSize + FRAMING_BYTES;
    if (this.messages >= this.limits.messages || this.bytes + size > this.limits.bytes) throw this.full(subject);
    let batch = this.filling;
    if (!batch) {
      batch = this.filling = new Batch();
      this.batches.push(batch);
    }
    batch.subjects.push(subject);
    batch.payloads.push(payload);
    batch.headers.push(headers && natsHeaders(headers));
    batch.bytes += size;
    this.messages++;
    this.bytes += size;
    if (this.connected) {
      if (batch.bytes >= HAND_OFF_BYTES) this.handOff();
      else if (!this.endOfTurn.pending) {
        // The first publish of a turn goes out as soon as nats.js alone would send it (no latency added);
        // what follows in this turn (an awaited loop) goes out together at the end of the turn.
        this.endOfTurn.schedule();
        queueMicrotask(this.handOffNow);
      }
    }
    if (this.confirm === 'server') return batch.confirmation();
    if (this.messages < this.heavyMessages && this.bytes < this.heavyBytes) return undefined;
    this.endOfTurn.schedule();
    this.turnEnd ??= deferred();
    return this.turnEnd.promise;
  }

  /** Settles once the server confirmed everything accepted so far (rejects if it never will). */
  confirmed(): Promise<void> | undefined {
    const newest = this.batches[this.batches.length - 1];
    if (!newest) return undefined;
    if (this.connected) {
      this.handOff();
      this.ping();
    }
    return newest.confirmation();
  }

  disconnected(): void {
    this.connected = false;
  }

  /** Sends again, first and in order, what the server had not confirmed; then what was accepted meanwhile. */
  reconnected(): void {
    this.connected = true;
    this.unpinged = []; // what they were sent with is gone; they are sent again below
    this.maxPayload = this.connection.info?.max_payload ?? this.maxPayload;
    let resent = 0;
    for (const batch of this.batches) {
      if (batch === this.filling) break;
      resent += batch.subjects.length;
      this.send(batch);
    }
    this.resent += resent;
    if (resent > 0) this.logger.warn(`re-sent ${resent} publishes the server had not confirmed before the disconnect (they may arrive twice)`);
    this.handOff();
  }

  /** Gives up everything not confirmed: counted and logged as lost; waiting promises reject with the reason. */
  fail(reason: Error): void {
    this.closed = true;
    this.connected = false;
    clearTimeout(this.pingTimer);
    this.unpinged = [];
    const lost = this.messages;
    for (const batch of this.batches.splice(0)) batch.givenUp(reason);
    this.filling = undefined;
    this.messages = 0;
    this.bytes = 0;
    if (lost === 0) return;
    this.lost += lost;
    this.logger.error(`${lost} accepted publishes were not delivered: ${reason.message}`);
  }

  private full(subject: string): PublishBufferFullError {
    const error = new PublishBufferFullError(
      `cannot publish to ${subject}: ${this.messages} publishes (${this.bytes} bytes) await the server's confirmation ` +
        `${this.connected ? '' : 'while the connection is down '}— the bound of the publish buffer ` +
        `(nats.publishBufferMessages / NATS_PUBLISH_BUFFER_MESSAGES: ${this.limits.messages}, nats.publishBufferBytes / NATS_PUBLISH_BUFFER_BYTES: ${this.limits.bytes})`,
    );
    if (this.rejectedWhileFull++ === 0) this.logger.warn(`publish buffer full: publishes are refused until the server confirms buffered ones. ${error.message}`);
    this.rejected++;
    return error;
  }

  private onTurnEnd(): void {
    if (this.connected) this.handOff();
    const turnEnd = this.turnEnd;
    this.turnEnd = undefined;
    turnEnd?.resolve();
  }

  private readonly handOffNow = (): void => {
    if (this.connected) this.handOff();
  };

  private handOff(): void {
    const batch = this.filling;
    if (!batch || this.closed) return;
    this.filling = undefined;
    this.send(batch);
  }

  /** One synchronous burst of publishes: nats.js writes them in 32 KiB chunks. */
  private send(batch: Batch): void {
    batch.sends++;
    const { subjects, payloads, headers } = batch;
    for (let i = 0; i < subjects.length; i++) {
      try {
        const h = headers[i];
        this.connection.publish(subjects[i], payloads[i], h && { headers: h });
      } catch (error) {
        if (this.connection.isClosed()) return; // fail() gives everything up
        this.drop(batch, i--, error as Error);
      }
    }
    this.unpinged.push(batch);
    const urgent = this.confirm === 'server' || batch.bytes >= HAND_OFF_BYTES || this.messages >= this.heavyMessages || this.bytes >= this.heavyBytes;
    if (urgent) this.ping();
    else this.pingTimer ??= setTimeout(this.pingLater, CONFIRM_WITHIN_MS).unref();
  }

  /**
   * A flush in the same tick as the publishes it covers: its PING is queued right behind them, so
   * its PONG confirms that the server processed them. A rejection means the connection dropped
   * before the PONG: those batches are sent again on reconnect.
   */
  private ping(): void {
    clearTimeout(this.pingTimer);
    this.pingTimer = undefined;
    const batches = this.unpinged;
    if (batches.length === 0) return;
    this.unpinged = [];
    const sends = batches.map((batch) => batch.sends);
    this.connection.flush().then(() => {
      for (let i = 0; i < batches.length; i++) this.confirmedBatch(batches[i], sends[i]);
    }, ignore);
  }

  private readonly pingLater = (): void => {
    this.pingTimer = undefined;
    if (this.connected) this.ping();
  };

  private confirmedBatch(batch: Batch, send: number): void {
    if (batch.sends !== send || this.closed) return;
    const index = this.batches.indexOf(batch);
    if (index < 0) return;
    this.batches.splice(index, 1);
    this.messages -= batch.subjects.length;
    this.bytes -= batch.bytes;
    batch.confirmed();
    if (this.rejectedWhileFull > 0) {
      this.logger.log(`publish buffer has room again, after refusing ${this.rejectedWhileFull} publishes`);
      this.rejectedWhileFull = 0;
    }
  }

  /** A publish nats.js refused at hand-off (a server with a smaller max_payload after a reconnect). */
  private drop(batch: Batch, index: number, error: Error): void {
    const subject = batch.subjects[index];
    const headers = batch.headers[index];
    const size = subject.length + batch.payloads[index].length + (headers ? headers.encode().length : 0) + FRAMING_BYTES;
    batch.subjects.splice(index, 1);
    batch.payloads.splice(index, 1);
    batch.headers.splice(index, 1);
    batch.bytes -= size;
    this.messages--;
    this.bytes -= size;
    this.lost++;
    this.logger.error(`an accepted publish to ${subject} was not delivered: ${error.message}`);
  }
}
