import { deferred, type Deferred } from '../../deferred.js';
import type { RedisClient } from './redis-client.js';
import type { RedisKeys } from './redis-keys.js';
import { appendAllOnce } from './redis-scripts.js';

/** Entries per script call: a call runs atomically, so a bigger batch holds Redis longer. */
const MAX_BATCH = 256;

/**
 * Appends events to the stream. An id given to the publish (by the application, or re-sent by the
 * outbox relay) may have been stored already: it goes through the script that looks it up in the
 * duplicate window first and remembers it there, batched, so that the publishes of one microtask (a
 * burst, or a `Promise.all`) are one script call rather than one each. An id the bus made for the
 * publish cannot have been stored, so it is a plain XADD: a script costs Redis several times as much.
 * Publish order holds: a plain XADD first sends the batch waiting, and the script is sent with its
 * source (EVAL), so that a Redis that forgot it does not run it after what was sent meanwhile.
 */
export class RedisAppender {
  /** The script's arguments before the entries: the window, the slices' key prefix, XADD's arguments before the fields. */
  private readonly head: readonly string[];
  private args: (string | Buffer)[];
  private settles: Deferred[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    /** 0: every publish is stored, none is looked up. */
    private readonly windowMs: number,
    /** XADD's arguments before the entry's fields (trimming, the `*` id): the same for every entry. */
    private readonly xaddHead: readonly string[],
  ) {
    this.head = [String(windowMs), keys.publishedPrefix, String(xaddHead.length), ...xaddHead];
    this.args = [...this.head];
  }

  /**
   * Resolves once Redis stored the entry or found its id within the window; rejects when the call failed.
   * `newId`: the bus made the id for this publish (no earlier publish had it), so it is not looked up.
   */
  append(subject: string, id: string, body: Buffer, newId: boolean): Promise<unknown> {
    if (newId || this.windowMs === 0) {
      this.send();
      return this.client.sendCommand(['XADD', this.keys.stream, ...this.xaddHead, 'subject', subject, 'id', id, 'data', body]);
    }
    const settle = deferred();
    if (this.settles.length === 0) queueMicrotask(this.send);
    this.args.push(subject, id, body);
    this.settles.push(settle);
    if (this.settles.length >= MAX_BATCH) this.send();
    return settle.promise;
  }

  private readonly send = (): void => {
    const settles = this.settles;
    if (settles.length === 0) return;
    const args = this.args;
    this.args = [...this.head];
    this.settles = [];
    appendAllOnce.runInOrder(this.client, [this.keys.stream], args).then(
      () => {
        for (const settle of settles) settle.resolve();
      },
      (error: Error) => {
        for (const settle of settles) settle.reject(error);
      },
    );
  };
}
