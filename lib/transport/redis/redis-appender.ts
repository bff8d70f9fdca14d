import { deferred, type Deferred } from '../../deferred.js';
import type { RedisClient } from './redis-client.js';
import type { RedisKeys } from './redis-keys.js';
import { appendAllOnce, WINDOW_SLICES } from './redis-scripts.js';

/** Entries per call: a call runs atomically, so a bigger batch holds Redis longer. */
const MAX_BATCH = 256;
/** How often the offset of Redis's clock from this one is measured again. */
const CLOCK_CHECK_MS = 60_000;

/** The publishes of one call: checked against the window (the script), or new ids recorded in it (a transaction). */
interface Batch {
  readonly checked: boolean;
  readonly args: (string | Buffer)[];
  readonly settles: Deferred[];
}

/**
 * Appends events with their ids remembered for the duplicate window, batched: the publishes of one
 * microtask (a burst, or a `Promise.all`) go to Redis as one call rather than one each. An id the bus
 * made for the publish cannot have been stored before: it is appended with plain XADDs and recorded in
 * the window's slice, in one MULTI/EXEC; any other id (given by the application, re-sent by the outbox)
 * goes through the script that looks it up first, which costs Redis several times as much per event.
 * Publish order holds: a batch ends where the kind changes, and calls run in the order they are sent.
 * An awaited publish loop still sends each at once: nothing waits for a batch to fill.
 */
export class RedisAppender {
  /** The script's arguments before the entries: the window, the slices' key prefix, XADD's arguments before the fields. */
  private readonly scriptHead: readonly string[];
  private readonly slice: number;
  private batch?: Batch;
  private sendQueued = false;
  /** Redis's clock minus this one, in ms: new ids are recorded in the slice Redis's clock is in, as the script sees it. */
  private clockOffset = 0;
  private nextClockCheck = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    windowMs: number,
    /** XADD's arguments before the entry's fields (trimming, the `*` id): the same for every entry. */
    private readonly xaddHead: readonly string[],
  ) {
    this.scriptHead = [String(windowMs), keys.publishedPrefix, String(xaddHead.length), ...xaddHead];
    this.slice = Math.ceil(windowMs / WINDOW_SLICES);
  }

  /** Measures Redis's clock against this one (before the first publish, and every minute after). */
  async checkClock(): Promise<void> {
    this.nextClockCheck = Date.now() + CLOCK_CHECK_MS;
    const sent = Date.now();
    const [seconds, micros] = (await this.client.sendCommand(['TIME'])) as [string, string];
    const received = Date.now();
    this.clockOffset = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + received) / 2;
  }

  /**
   * Resolves once Redis stored the entry or found its id within the window; rejects when the call failed.
   * `newId`: the bus made the id for this publish (no earlier publish had it), so it is not looked up.
   */
  append(subject: string, id: string, body: Buffer, newId: boolean): Promise<void> {
    const checked = !newId;
    let batch = this.batch;
    if (batch && batch.checked !== checked) {
      this.send();
      batch = undefined;
    }
    if (!batch) {
      batch = this.batch = { checked, args: checked ? [...this.scriptHead] : [], settles: [] };
      if (!this.sendQueued) {
        this.sendQueued = true;
        queueMicrotask(this.sendQueuedBatch);
      }
    }
    const settle = deferred();
    if (checked) batch.args.push(subject, id, body);
    else batch.args.push(id, subject, body);
    batch.settles.push(settle);
    if (batch.settles.length >= MAX_BATCH) this.send();
    return settle.promise;
  }

  private readonly sendQueuedBatch = (): void => {
    this.sendQueued = false;
    this.send();
  };

  private send(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    // In order with the transactions: publish order holds after Redis restarted and forgot the script, too.
    const sent: Promise<unknown> = batch.checked ? appendAllOnce.runInOrder(this.client, [this.keys.stream], batch.args) : this.appendNew(batch.args);
    sent.then(
      () => {
        for (const settle of batch.settles) settle.resolve();
      },
      (error: Error) => {
        for (const settle of batch.settles) settle.reject(error);
      },
    );
  }

  /**
   * The entries (id, subject, data triples) and their ids in the current slice, as one transaction: stored
   * and remembered together. The slice expires a slice after the window has passed it, and the one that
   * fell out of the window is freed in the background, as the script does. Where an XADD failed, its id
   * is forgotten before the call rejects, so that sending it again stores it.
   */
  private async appendNew(entries: (string | Buffer)[]): Promise<void> {
    if (Date.now() >= this.nextClockCheck) void this.checkClock().catch(() => undefined);
    const current = Math.floor((Date.now() + this.clockOffset) / this.slice);
    const { stream, publishedPrefix } = this.keys;
    const slice = publishedPrefix + current;
    const multi = this.client.multi();
    const ids: (string | Buffer)[] = ['HSET', slice];
    for (let i = 0; i < entries.length; i += 3) {
      const id = entries[i];
      multi.addCommand(['XADD', stream, ...this.xaddHead, 'subject', entries[i + 1], 'id', id, 'data', entries[i + 2]]);
      ids.push(id, '1');
    }
    multi.addCommand(ids);
    multi.addCommand(['PEXPIREAT', slice, String((current + WINDOW_SLICES + 2) * this.slice)]);
    multi.addCommand(['UNLINK', publishedPrefix + (current - WINDOW_SLICES - 1)]);
    try {
      await multi.exec();
    } catch (error) {
      // A transaction that ran, with failed commands: their replies say why (the first is the reason given).
      const { replies, errorIndexes } = error as { replies?: unknown[]; errorIndexes?: number[] };
      if (!replies || !errorIndexes?.length) throw error;
      const failedIds = errorIndexes.filter((i) => i < ids.length / 2 - 1).map((i) => entries[3 * i]);
      if (failedIds.length > 0) await this.client.sendCommand(['HDEL', slice, ...failedIds]).catch(() => undefined);
      throw replies[errorIndexes[0]];
    }
  }
}
