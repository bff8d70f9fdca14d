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
  private keys: string[] = [];
  private args: (string | Buffer)[] = [];
  private settles: Deferred[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly streamKeys: RedisKeys,
    private readonly windowMs: number,
    /** XADD's arguments before the entry's fields (trimming, the `*` id): the same for every entry. */
    private readonly head: readonly string[],
  ) {}

  /** Resolves once Redis stored the entry or found its id within the window; rejects when the call failed. */
  append(subject: string, id: string, body: Buffer): Promise<void> {
    const settle = deferred();
    if (this.settles.length === 0) queueMicrotask(this.send);
    this.keys.push(this.streamKeys.published(id));
    this.args.push(...this.head, 'subject', subject, 'id', id, 'data', body);
    this.settles.push(settle);
    if (this.settles.length >= MAX_BATCH) this.send();
    return settle.promise;
  }

  private readonly send = (): void => {
    const settles = this.settles;
    if (settles.length === 0) return;
    const keys = this.keys;
    const args = this.args;
    this.keys = [];
    this.args = [];
    this.settles = [];
    const perEntry = String(args.length / settles.length);
    appendAllOnce.run(this.client, [this.streamKeys.stream, ...keys], [String(this.windowMs), perEntry, ...args]).then(
      () => {
        for (const settle of settles) settle.resolve();
      },
      (error: Error) => {
        for (const settle of settles) settle.reject(error);
      },
    );
  };
}
