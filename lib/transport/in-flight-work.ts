import { settlesWithin } from '../deferred.js';

/** How long a stopping transport waits for running handlers and unacknowledged publishes by default. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

const ignore = () => undefined;

/**
 * Work still running (handlers of received messages, publishes awaiting their ack), so that a
 * stopping transport can wait for it, within a bound. Whoever starts the work reports its failure.
 */
export class InFlightWork {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  track(work: Promise<unknown>): void {
    const settled = work.then(ignore, ignore);
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
  }

  /**
   * Resolves true once the work running now has settled, or false when `ms` ran out first. The
   * timer never outlives the wait, so that a stopping process exits as soon as it is done.
   */
  settled(ms: number): Promise<boolean> {
    return this.running.size === 0 ? Promise.resolve(true) : settlesWithin(Promise.all(this.running), ms);
  }
}
