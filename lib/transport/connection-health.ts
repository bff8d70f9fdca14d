import type { TransportStatus } from './event-transport.js';

/** What status() says of a transport's connection, the same on every transport. */
export type ConnectionReport = Pick<TransportStatus, 'connected' | 'disconnects' | 'reconnects' | 'lastError' | 'lastErrorAt' | 'since' | 'disconnectedSince'>;

/**
 * A broker connection's ups and downs: whether it is up and since when, how often it went down and
 * came back, and the last error with its time. Each transport tells it what its client reports.
 */
export class ConnectionHealth {
  private up = false;
  private everUp = false;
  private disconnects = 0;
  private reconnects = 0;
  /** When `up` last changed (ISO time). */
  private since?: string;
  private error?: string;
  private errorAt?: string;

  get connected(): boolean {
    return this.up;
  }

  get lastError(): string | undefined {
    return this.error;
  }

  /** `connected`, or `disconnected` with the last error: for messages that say why something failed. */
  describe(): string {
    if (this.up) return 'connected';
    return this.error ? `disconnected: ${this.error}` : 'disconnected';
  }

  /** Since when (epoch ms) the connection is up, or down; undefined before it first was up. */
  get changedAt(): number | undefined {
    return this.since === undefined ? undefined : Date.parse(this.since);
  }

  /** The connection is up; true when it came back (it was up before), counted as a reconnect. */
  opened(): boolean {
    const back = this.everUp;
    if (back) this.reconnects++;
    this.everUp = true;
    this.change(true);
    return back;
  }

  /** The connection was lost; true when it had been up (counted as a disconnect). */
  lost(): boolean {
    if (!this.up) return false;
    this.disconnects++;
    this.change(false);
    return true;
  }

  /** The connection ended on purpose (a close): down, not counted. */
  ended(): void {
    this.change(false);
  }

  failed(message: string): void {
    this.error = message;
    this.errorAt = new Date().toISOString();
  }

  report(): ConnectionReport {
    return {
      connected: this.up,
      disconnects: this.disconnects,
      reconnects: this.reconnects,
      lastError: this.error,
      lastErrorAt: this.errorAt,
      since: this.since,
      disconnectedSince: this.up ? undefined : this.since,
    };
  }

  private change(up: boolean): void {
    if (this.up === up && this.since) return;
    this.up = up;
    this.since = new Date().toISOString();
  }
}
