import { createHash } from 'node:crypto';

/**
 * Remembers which event ids a consumer scope (a group, or one instance) has handled, for a window:
 * a redelivery of a handled event (its ack lost, or the event re-published after the duplicate
 * window) is then acknowledged without running the handlers again.
 */
export interface IdempotencyStore {
  seen(scope: string, id: string): Promise<boolean>;
  record(scope: string, id: string): Promise<void>;
}

/** Ids remembered by default: about 21 MB (some 210 bytes an entry). */
export const DEFAULT_IDEMPOTENCY_MAX_ENTRIES = 100_000;

/** Keys longer than this are kept as a hash: an id from the wire may be of any length, an entry is not. */
const MAX_KEY_LENGTH = 128;

/**
 * In-process: survives redeliveries to the same process only. Holds at most `maxEntries` ids (the
 * oldest go first), so it remembers the window or the last `maxEntries` handled ids, whichever is less.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  // Insertion order is expiry order (one window for all): pruning and eviction both take the oldest first.
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number = DEFAULT_IDEMPOTENCY_MAX_ENTRIES,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error(`MemoryIdempotencyStore: maxEntries must be an integer >= 1, got ${maxEntries}`);
  }

  /** How many ids are remembered now. */
  get size(): number {
    return this.expiries.size;
  }

  async seen(scope: string, id: string): Promise<boolean> {
    const expiry = this.expiries.get(key(scope, id));
    return expiry !== undefined && expiry > Date.now();
  }

  async record(scope: string, id: string): Promise<void> {
    const now = Date.now();
    for (const [oldest, expiry] of this.expiries) {
      if (expiry > now && this.expiries.size < this.maxEntries) break;
      this.expiries.delete(oldest);
    }
    const k = key(scope, id);
    this.expiries.delete(k);
    this.expiries.set(k, now + this.windowMs);
  }
}

function key(scope: string, id: string): string {
  const k = `${scope}\n${id}`;
  return k.length <= MAX_KEY_LENGTH ? k : `#${createHash('sha256').update(k).digest('base64url')}`;
}
