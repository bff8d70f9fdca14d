interface Cached<V> {
  readonly value: V;
  readonly bytes: number;
}

/**
 * A cache bounded by entry count and by (estimated) bytes: what comes from the wire can make
 * many distinct keys, or large ones, and must never grow the heap without limit. Full, it
 * forgets its oldest entries first; an entry larger than the whole budget is not kept.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, Cached<V>>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Keeps `value` under `key`, counted as `bytes`, and returns it. */
  set(key: K, value: V, bytes: number): V {
    if (bytes > this.maxBytes) return value;
    this.delete(key);
    while (this.entries.size >= this.maxEntries || this.bytes + bytes > this.maxBytes) this.delete(this.entries.keys().next().value as K);
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    return value;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The estimated bytes held. */
  get byteSize(): number {
    return this.bytes;
  }

  private delete(key: K): void {
    const cached = this.entries.get(key);
    if (!cached) return;
    this.entries.delete(key);
    this.bytes -= cached.bytes;
  }
}
