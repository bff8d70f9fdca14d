/**
 * "Nothing left in flight", awaitable with a timeout: for a stop that waits for what runs, but not
 * forever. The timer never outlives the wait, so that a stopping process exits at once.
 */
export class IdleSignal {
  private waiters: (() => void)[] = [];

  /** Call when what was in flight came down to none. */
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves true at the next notify(), false after the timeout. */
  async wait(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    const idle = await new Promise<boolean>((resolve) => {
      waiter = () => resolve(true);
      this.waiters.push(waiter);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    clearTimeout(timer);
    this.waiters = this.waiters.filter((w) => w !== waiter);
    return idle;
  }
}
