/** Ids remembered at most: past this the oldest are forgotten first (a busy instance's window is shorter). */
const MAX_IDS = 100_000;
/** Bytes of ids remembered at most (ids are the caller's: any length). */
const MAX_ID_BYTES = 8 * 2 ** 20;

interface Entry {
  readonly confirmed: Promise<unknown>;
  readonly expiry: number;
  readonly bytes: number;
}

/**
 * The broker stores whatever it is sent, so the duplicate window is kept where publishes start:
 * an event id published again by this instance within the window is not sent again, and its
 * publish settles as the first one did.
 */
export class RecentPublishes {
  // Insertion order is expiry order (one window for all), so pruning stops at the first live entry.
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** When the oldest entry expires: nothing to prune before (this runs on every publish). */
  private oldestExpiry = Infinity;

  constructor(private readonly windowMs: number) {}

  /** The publish of this id still in the window, if any. */
  find(id: string): Promise<unknown> | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (entry.expiry > Date.now()) return entry.confirmed;
    this.forget(id, entry);
    return undefined;
  }

  remember(id: string, confirmed: Promise<unknown>): void {
    if (this.windowMs === 0) return;
    const now = Date.now();
    if (now >= this.oldestExpiry || this.entries.size >= MAX_IDS || this.bytes >= MAX_ID_BYTES) this.prune(now);
    const entry: Entry = { confirmed, expiry: now + this.windowMs, bytes: id.length * 2 };
    if (this.entries.size === 0) this.oldestExpiry = entry.expiry;
    this.entries.set(id, entry);
    this.bytes += entry.bytes;
  }

  /** A publish that failed is forgotten, so that it can be retried. */
  failed(id: string, confirmed: Promise<unknown>): void {
    const entry = this.entries.get(id);
    if (entry?.confirmed === confirmed) this.forget(id, entry);
  }

  private prune(now: number): void {
    this.oldestExpiry = Infinity;
    for (const [key, entry] of this.entries) {
      if (entry.expiry > now && this.entries.size < MAX_IDS && this.bytes < MAX_ID_BYTES) {
        this.oldestExpiry = entry.expiry;
        break;
      }
      this.forget(key, entry);
    }
  }

  private forget(id: string, entry: Entry): void {
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }
}
