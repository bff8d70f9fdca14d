import { DomainEvent } from '../lib/index.js';

/** Routed by room: an instance receives the events of the rooms its clients are in, and no others. */
@DomainEvent('PlayerEnteredRoom', { key: (e: PlayerEnteredRoom) => e.roomId })
export class PlayerEnteredRoom {
  constructor(
    readonly playerId: string,
    readonly roomId: string,
    readonly at: Date,
  ) {}
}

@DomainEvent('PlayerLeftRoom', { key: (e: PlayerLeftRoom) => e.roomId })
export class PlayerLeftRoom {
  constructor(
    readonly playerId: string,
    readonly roomId: string,
    readonly at: Date,
  ) {}
}

/** One per tick period for the whole cluster, published by the instance holding the tick lease. */
@DomainEvent('GameTick')
export class GameTick {
  constructor(
    readonly tick: number,
    readonly at: Date,
  ) {}
}

/** Every instance announces itself and the players of its rooms, four times per tick period. */
@DomainEvent('InstanceHeartbeat')
export class InstanceHeartbeat {
  constructor(
    readonly instanceId: string,
    readonly lastTick: number,
    readonly rooms: Record<string, string[]>,
  ) {}
}
