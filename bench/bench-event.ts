import { DomainEvent, ValueObject } from '../lib/index.js';

@ValueObject()
export class Position {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

/** About 150 bytes of JSON: a class with a Date and a nested value object. */
@DomainEvent('PlayerMoved')
export class PlayerMoved {
  constructor(
    readonly playerId: string,
    readonly roomId: string,
    readonly at: Date,
    readonly pos: Position,
    readonly seq: number,
    /** High-resolution send time (ms since the epoch), for latency across processes on one machine. */
    readonly sentAt: number,
  ) {}
}

export const now = () => performance.timeOrigin + performance.now();

export const playerMoved = (seq: number) => new PlayerMoved('player-00042', 'arkham-1', new Date(), new Position(12.5, -3.25), seq, now());

/** Unacknowledged JetStream publishes, and deliveries, in flight at once: the same for ours and raw. */
export const JETSTREAM_WINDOW = 256;
