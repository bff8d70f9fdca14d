import type { Logger } from '@nestjs/common';
import type { OutboxStatus } from '../domain-event-bus.js';
import type { EventTransport } from '../transport/event-transport.js';
import type { ResolvedOutboxOptions } from './outbox-options.js';
import type { OutboxTable } from './outbox-table.js';
import type { OutboxPool, OutboxPoolClient } from './pg-types.js';

interface ClaimedRow {
  seq: string;
  id: string;
  subject: string;
  routing_key: string | null;
  payload: Buffer;
  previous_of_key: string | null;
}

/** Pause after the n-th failure in a row: 100 ms, doubling, at most 5 s. */
export const relayBackoffMs = (failures: number): number => Math.min(5_000, 100 * 2 ** Math.max(0, failures - 1));
/** How often the backlog is measured for status(). */
const MEASURE_EVERY_MS = 1_000;
/** Rows left to a relay that holds an earlier row of their key are tried again after this. */
const DEFERRED_RETRY_MS = 50;
/**
 * Batches in flight per relay: while one awaits the transport's acks, the next is claimed and published.
 * Claims take turns, so that each starts after the rows of the one before.
 */
const BATCHES_IN_FLIGHT = 2;

/**
 * The claim must walk the partial index of unsent rows in seq order: without statistics yet (a burst into a
 * new table) the planner would rather sort every unsent row, payloads included, on every claim. The costs
 * these settings add would make PostgreSQL JIT-compile the claim each time (hundreds of ms): JIT off.
 */
const CLAIM_BEGIN = 'BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends committed outbox rows through the transport; every instance runs one, without a leader.
 *
 * A batch is one transaction: claim the oldest unsent rows with `FOR UPDATE SKIP LOCKED` (other relays
 * skip them), publish them all at once with their stored ids, then delete (or mark) those the transport
 * accepted and commit. A relay that dies mid-batch leaves its rows locked only until PostgreSQL sees the
 * connection go; they are sent again, and the stored id lets JetStream's duplicate window and the
 * idempotency inbox absorb the second copy. A keyed row goes only after the unsent row of its key just
 * before it (sent already, or earlier in the same batch): each key is sent in order across relays. It wakes on NOTIFY (sent by the
 * table's trigger on commit) and polls as a fallback; it pauses with backoff while the transport is down.
 */
export class OutboxRelay {
  private running?: Promise<void>;
  private stopping = false;
  private woken = false;
  private readonly waiting = new Set<() => void>();
  private claimTurn: Promise<void> = Promise.resolve();
  private listener?: OutboxPoolClient;
  private listening?: Promise<void>;
  private failures = 0;
  /**
   * Where the next claim starts: after the last full batch while a backlog is drained, so that no claim walks
   * the index entries of rows sent (deleted) a moment ago; from the head ('0') otherwise, and at least every
   * poll interval, for rows committed late with a lower seq and rows left to other relays.
   */
  private fromSeq = '0';
  private headScannedAt = 0;
  private measuredAt = 0;
  private lastSweep = 0;
  private readonly state: { -readonly [K in keyof OutboxStatus]: OutboxStatus[K] } = { unsent: 0, oldestUnsentMs: 0, relayed: 0, relayErrors: 0 };

  constructor(
    private readonly pool: OutboxPool,
    private readonly table: OutboxTable,
    private readonly options: ResolvedOutboxOptions,
    private readonly transport: EventTransport,
    private readonly logger: Logger,
    /** True once the bus has subscribed its handlers (events sent earlier would miss this instance's). */
    private readonly busReady: () => boolean,
  ) {}

  start(): void {
    this.running ??= this.run().catch((error: Error) => this.logger.error(`outbox relay stopped: ${error.message}`, error.stack));
  }

  /** Finishes the batches in flight, then stops listening. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.waiting) wake();
    await this.running;
    const listener = this.listener;
    this.listener = undefined;
    if (listener) {
      await listener.query(`UNLISTEN "${this.table.channel}"`).catch(() => undefined);
      listener.release();
    }
  }

  status(): OutboxStatus {
    return { ...this.state };
  }

  private async run(): Promise<void> {
    while (!this.busReady() && !this.stopping) await sleep(20);
    await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, () => this.loop()));
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      await this.listen();
      if (!this.transport.status().connected) {
        await this.housekeeping();
        await this.pause(relayBackoffMs(++this.failures));
        continue;
      }
      let claimed: number, sent: number;
      try {
        ({ claimed, sent } = await this.relayBatch());
        this.failures = 0;
      } catch (error) {
        this.failed(error as Error);
        await this.pause(relayBackoffMs(this.failures));
        continue;
      }
      await this.housekeeping();
      if (claimed === this.options.batchSize && sent > 0) continue; // more waiting: no pause
      await this.waitForWork(sent < claimed ? DEFERRED_RETRY_MS : this.options.pollIntervalMs);
    }
  }

  /** One batch, in one transaction. Rejects (after committing what was sent) when the transport refused some. */
  private async relayBatch(): Promise<{ claimed: number; sent: number }> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(CLAIM_BEGIN);
      const { rows, sendable } = await this.claim(client);
      const { sent, failure } = await this.publish(sendable);
      if (sent.length > 0) await client.query(this.options.retentionMs > 0 ? this.table.markSent : this.table.deleteSent, [sent]);
      await client.query('COMMIT');
      this.state.relayed += sent.length;
      if (failure) throw failure;
      return { claimed: rows.length, sent: sent.length };
    } catch (error) {
      this.fromSeq = '0';
      if (!(error instanceof RelayPublishError)) {
        broken = error as Error;
        await client.query('ROLLBACK').catch(() => undefined);
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** Claims the next rows (in its turn), those of them to send now, and moves where the next claim starts. */
  private async claim(client: OutboxPoolClient): Promise<{ rows: ClaimedRow[]; sendable: ClaimedRow[] }> {
    const turn = this.claimTurn;
    let done!: () => void;
    this.claimTurn = new Promise((resolve) => (done = resolve));
    try {
      await turn;
      const now = Date.now();
      if (now - this.headScannedAt >= this.options.pollIntervalMs) this.fromSeq = '0';
      if (this.fromSeq === '0') this.headScannedAt = now;
      const { rows } = await client.query<ClaimedRow>(this.table.claim, [this.options.batchSize, this.fromSeq]);
      const sendable = this.inKeyOrder(rows);
      const drained = rows.length === this.options.batchSize && sendable.length === rows.length;
      this.fromSeq = drained ? rows[rows.length - 1].seq : '0';
      return { rows, sendable };
    } finally {
      done();
    }
  }

  /**
   * The rows that may go now: of each key, those that follow on without a gap from the oldest unsent row of
   * the key. A gap is a row another relay holds; from there on the key is left for later.
   */
  private inKeyOrder(rows: ClaimedRow[]): ClaimedRow[] {
    let lastOfKey: Map<string, string | undefined> | undefined;
    const sendable: ClaimedRow[] = [];
    for (const row of rows) {
      const key = row.routing_key;
      if (key !== null) {
        lastOfKey ??= new Map();
        const last = lastOfKey.has(key) ? lastOfKey.get(key) : null; // undefined: the key is blocked
        if (last === undefined || row.previous_of_key !== last) {
          lastOfKey.set(key, undefined);
          continue;
        }
        lastOfKey.set(key, row.seq);
      }
      sendable.push(row);
    }
    return sendable;
  }

  /** Publishes all rows at once, in order; returns the seqs the transport accepted and the first refusal. */
  private async publish(rows: ClaimedRow[]): Promise<{ sent: string[]; failure?: RelayPublishError }> {
    const acks: Array<Promise<unknown> | void> = [];
    let refused: { row: ClaimedRow; error: unknown } | undefined;
    for (const row of rows) {
      try {
        acks.push(this.transport.publish(row.subject, row.payload, row.id));
      } catch (error) {
        refused = { row, error }; // closed or disconnected: the later rows would fail alike
        break;
      }
    }
    const sent: string[] = [];
    let failure: RelayPublishError | undefined;
    // Transports without acks (memory, core NATS) have taken the message once the broker processed what was written.
    const flushed = acks.some((ack) => !ack) ? this.transport.flush().then(() => undefined, (error: unknown) => error) : undefined;
    const settled = await Promise.allSettled(acks);
    const flushError = await flushed;
    for (let i = 0; i < settled.length; i++) {
      const result = settled[i];
      if (result.status === 'fulfilled' && !(result.value === undefined && flushError)) sent.push(rows[i].seq);
      else failure ??= new RelayPublishError(rows[i], result.status === 'rejected' ? result.reason : flushError);
    }
    if (refused) failure ??= new RelayPublishError(refused.row, refused.error);
    return { sent, failure };
  }

  private failed(error: Error): void {
    this.failures++;
    this.state.relayErrors++;
    this.state.lastError = error.message;
    // Once per outage, then every tenth attempt: a long one must not flood the log.
    if (this.failures === 1 || this.failures % 10 === 0) {
      this.logger.error(`outbox relay: ${error.message}; retrying in ${relayBackoffMs(this.failures)} ms (attempt ${this.failures})`, error.stack);
    }
  }

  /** Measures the backlog for status(), and deletes sent rows past their retention. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    try {
      if (now - this.measuredAt >= MEASURE_EVERY_MS) {
        this.measuredAt = now;
        const { rows } = await this.pool.query<{ unsent: string; oldest_ms: string }>(this.table.lag);
        this.state.unsent = Number(rows[0].unsent);
        this.state.oldestUnsentMs = Number(rows[0].oldest_ms);
        this.state.measuredAt = new Date(now).toISOString();
      }
      const { retentionMs } = this.options;
      if (retentionMs > 0 && now - this.lastSweep >= Math.min(60_000, retentionMs)) {
        this.lastSweep = now;
        await this.pool.query(this.table.sweepSent, [retentionMs]);
      }
    } catch (error) {
      this.failed(error as Error);
    }
  }

  /** LISTENs on a client of its own; when that fails or the client is lost, polling goes on and this is tried again. */
  private listen(): Promise<void> {
    if (this.listener) return Promise.resolve();
    return (this.listening ??= this.openListener().finally(() => (this.listening = undefined)));
  }

  private async openListener(): Promise<void> {
    let client: OutboxPoolClient | undefined;
    try {
      client = await this.pool.connect();
      const lost = (error?: Error) => {
        if (this.listener !== client) return;
        this.listener = undefined;
        if (!this.stopping) this.logger.warn(`outbox relay: lost its LISTEN connection${error ? ` (${error.message})` : ''}; polling meanwhile`);
        client!.release(error ?? true);
      };
      client.on('notification', () => this.notified());
      client.on('error', lost);
      client.on('end', () => lost());
      await client.query(`LISTEN "${this.table.channel}"`);
      this.listener = client;
    } catch (error) {
      client?.release(error as Error);
      this.failed(error as Error);
    }
  }

  private notified(): void {
    this.woken = true;
    for (const wake of this.waiting) wake();
  }

  /** Resolves on a notification, after `ms`, or on stop, whichever comes first. */
  private waitForWork(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return this.pause(ms);
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }
}

/** The transport did not take an outbox row; the row stays and is sent again. */
class RelayPublishError extends Error {
  override readonly name = 'RelayPublishError';

  constructor(row: { id: string; subject: string }, cause: unknown) {
    super(`could not send ${row.subject} ${row.id}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}
