/**
 * Runs a callback once at the end of the current event-loop turn (setImmediate: after the I/O this
 * turn polled), however often it is asked for in the turn.
 */
export class EndOfTurn {
  private scheduled = false;

  constructor(private readonly run: () => void) {}

  get pending(): boolean {
    return this.scheduled;
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.fire);
  }

  private readonly fire = (): void => {
    this.scheduled = false;
    this.run();
  };
}
