import { deferred, type Deferred } from '../../deferred.js';
import type { RedisClient } from './redis-client.js';
import type { RedisKeys } from './redis-keys.js';
import { appendAllOnce } from './redis-scripts.js';

/** Entries per script call: a call runs atomically, so a bigger batch holds Redis longer. */
const MAX_BATCH = 256;

/**
 * Appends events with their ids remembered for the duplicate window, batched: the publishes of one
 * microtask (a burst, or a `Promise.all`) go to Redis as one script call rather than one each, which
 * is what the server spends its time on (a script call costs it several times an XADD). An awaited
 * publish loop still sends each at once: nothing waits for a batch to fill.
 */
export class RedisAppender {
  /** The script's arguments before the entries: the window, the slices' key prefix, XADD's arguments before the fields. */
  private readonly head: readonly string[];
  private args: (string | Buffer)[];
  private settles: Deferred[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    windowMs: number,
    /** XADD's arguments before the entry's fields (trimming, the `*` id): the same for every entry. */
    xaddHead: readonly string[],
  ) {
    this.head = [String(windowMs), keys.publishedPrefix, String(xaddHead.length), ...xaddHead];
    this.args = [...this.head];
  }

  /** Resolves once Redis stored the entry or found its id within the window; rejects when the call failed. */
  append(subject: string, id: string, body: Buffer): Promise<void> {
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
    appendAllOnce.run(this.client, [this.keys.stream], args).then(
      () => {
        for (const settle of settles) settle.resolve();
      },
      (error: Error) => {
        for (const settle of settles) settle.reject(error);
      },
    );
  };
}
