/** Per event type: what this instance published and received. */
export interface TypeStatus {
  readonly published: number;
  readonly received: number;
}

/** Per handler (`Class.method`, or `subscriber of …`): its runs, failures and (sampled) durations. */
export interface HandlerStatus {
  readonly runs: number;
  readonly errors: number;
  readonly lastError?: string;
  /** When the last error happened (ISO 8601). */
  readonly lastErrorAt?: string;
  /** Median and 99th percentile of the sampled run durations, in milliseconds. */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

/** One type's counters and its subject without a key (the destination of its spans and metrics). */
export class TypeStats implements TypeStatus {
  published = 0;
  received = 0;

  constructor(readonly destination: string) {}
}

/** One run in this many has its duration measured for status() (every run when metrics are on). */
const SAMPLE_MASK = 63;
/** Durations kept per handler for the percentiles: the most recent samples. */
const SAMPLES = 256;

export class HandlerStats {
  runs = 0;
  errors = 0;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  private readonly durations = new Float64Array(SAMPLES);
  private samples = 0;

  /** Counts a run; true when this one's duration is to be sampled. */
  started(): boolean {
    return (this.runs++ & SAMPLE_MASK) === 0;
  }

  took(ms: number): void {
    this.durations[this.samples++ % SAMPLES] = ms;
  }

  failed(error: Error): void {
    this.errors++;
    this.lastError = error.message.slice(0, 500);
    this.lastErrorAt = new Date().toISOString();
  }

  snapshot(): HandlerStatus {
    const sorted = this.durations.slice(0, Math.min(this.samples, SAMPLES)).sort();
    const at = (q: number) => (sorted.length === 0 ? undefined : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000) / 1000);
    return { runs: this.runs, errors: this.errors, lastError: this.lastError, lastErrorAt: this.lastErrorAt, p50Ms: at(0.5), p99Ms: at(0.99) };
  }
}

/** Where a listener keeps its handler's stats once looked up: no lookup per run. */
const STATS = Symbol('handler stats');

/** The bus's counters per type and per handler: one Map lookup per event, no strings built. */
export class BusStatistics {
  private readonly types = new Map<string, TypeStats>();
  private readonly handlers = new Map<string, HandlerStats>();

  constructor(private readonly prefixDot: string) {}

  /** A type's stats; created on first use (a type name off the wire is a registered one: decoding checked it). */
  type(name: string): TypeStats {
    let stats = this.types.get(name);
    if (!stats) this.types.set(name, (stats = new TypeStats(this.prefixDot + name)));
    return stats;
  }

  /** The stats of a listener's handler (shared by the listeners of one `Class.method`). */
  of(listener: { readonly description: string }): HandlerStats {
    const holder = listener as { [STATS]?: HandlerStats; readonly description: string };
    return (holder[STATS] ??= this.handler(listener.description));
  }

  private handler(description: string): HandlerStats {
    let stats = this.handlers.get(description);
    if (!stats) this.handlers.set(description, (stats = new HandlerStats()));
    return stats;
  }

  typeStatus(): Record<string, TypeStatus> {
    const out: Record<string, TypeStatus> = {};
    for (const [name, { published, received }] of this.types) out[name] = { published, received };
    return out;
  }

  handlerStatus(): Record<string, HandlerStatus> {
    const out: Record<string, HandlerStatus> = {};
    for (const [name, stats] of this.handlers) out[name] = stats.snapshot();
    return out;
  }
}
