/**
 * Every key of one event stream. The events are the stream itself; the rest start with `<stream>:`.
 * Group names are consumer names (letters, digits, "_" and "-"), so they never contain ":".
 */
export class RedisKeys {
  /** Dead letters: a stream of their own. */
  readonly deadLetters: string;
  /** Heartbeats: `<prefix><instance id>`, expiring when an instance stops refreshing them. */
  readonly alivePrefix: string;
  /** Group-less subscriptions' groups -> their instance, so that the groups of instances gone for good are removed. */
  readonly broadcastGroups: string;
  /** Instance id -> when its heartbeat was last refreshed (ms). */
  readonly lastSeen: string;
  /** Published event ids of one slice of the duplicate window: `<prefix><slice number>`, a hash. */
  readonly publishedPrefix: string;

  constructor(readonly stream: string) {
    this.deadLetters = `${stream}:dlq`;
    this.alivePrefix = `${stream}:alive:`;
    this.broadcastGroups = `${stream}:broadcast`;
    this.lastSeen = `${stream}:seen`;
    this.publishedPrefix = `${stream}:published:`;
  }

  /** Where dead letters of a group are replayed to: a stream only that group reads. */
  replay(group: string): string {
    return `${this.stream}:replay:${group}`;
  }

  /** A group's scheduled retries of the entries of `source` (the events, or the group's replays). */
  retries(source: string, group: string): string {
    return source === this.stream ? `${this.stream}:retry:${group}` : `${source}:retry`;
  }

  /** An ordered group's lock: only its holder reads. */
  lock(group: string): string {
    return `${this.stream}:lock:${group}`;
  }

  /** The handled-event record of one scope. */
  handled(scope: string, id: string): string {
    return `${this.stream}:done:${scope}:${id}`;
  }
}
