import type { Logger } from '@nestjs/common';
import type { JetStreamManager } from '@nats-io/jetstream';
import { transientReason } from './jetstream-errors.js';
import type { LeadershipReport, StreamStatus } from './jetstream-status.js';

/** How often the stream is asked for its leader while it has none. */
const POLL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Watches the stream's leadership only while there is reason to doubt it: a publish found no leader,
 * or a consumer lost contact. It then asks the stream (short timeouts) until a leader answers, and
 * logs when the stream lost its leader and when it had one again. Costs nothing while all is well.
 */
export class StreamLeadership implements LeadershipReport {
  private since?: number;
  private watching = false;
  private closed = false;

  constructor(
    /** A manager with short request timeouts: an info that hangs on a dead leader must not delay the next ask. */
    private readonly probe: JetStreamManager,
    readonly stream: string,
    private readonly logger: Logger,
    /** How long publishes are retried, for the log. */
    private readonly publishTimeoutMs: number,
  ) {}

  leaderless(error: Error): void {
    if (this.since !== undefined || this.closed) return;
    this.markLeaderless(Date.now(), `a publish got ${transientReason(error)}`);
    void this.watch();
  }

  led(): void {
    if (this.since !== undefined) this.markLed();
  }

  /** Something other than a publish (a consumer's lost heartbeats) suggests the stream may have no leader: ask it. */
  check(): void {
    if (this.since === undefined && !this.closed) void this.watch();
  }

  status(): StreamStatus {
    return this.since === undefined
      ? { name: this.stream, leaderless: false }
      : { name: this.stream, leaderless: true, leaderlessSince: new Date(this.since).toISOString() };
  }

  close(): void {
    this.closed = true;
  }

  private markLeaderless(since: number, why: string): void {
    this.since = since;
    this.logger.warn(
      `stream ${this.stream}: no leader answered (${why}): an election, nodes down, or this instance reconnecting; ` +
        `publishes are retried for up to ${this.publishTimeoutMs} ms`,
    );
  }

  private markLed(leader?: string): void {
    const ms = Date.now() - this.since!;
    this.since = undefined;
    this.logger.log(`stream ${this.stream} has a leader again${leader ? ` (${leader})` : ''} after ${ms} ms without one`);
  }

  private async watch(): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    try {
      while (!this.closed) {
        const asked = Date.now();
        const leader = await this.probe.streams.info(this.stream).then(
          (info) => (info.cluster ? info.cluster.leader : 'the server'),
          () => undefined,
        );
        if (leader) {
          if (this.since !== undefined) this.markLed(leader);
          return;
        }
        if (this.since === undefined) this.markLeaderless(asked, 'the stream info went unanswered');
        await sleep(POLL_MS);
      }
    } finally {
      this.watching = false;
    }
  }
}
