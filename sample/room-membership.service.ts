import { Injectable } from '@nestjs/common';
import { DomainEventBus, type EventSubscription } from '../lib/index.js';
import { PlayerEnteredRoom, PlayerLeftRoom } from './game-events.js';

/** A connected client, as far as rooms are concerned. */
export interface RoomClient {
  readonly player: string;
  send(message: object): void;
}

/**
 * The rooms this instance's clients are in. The instance subscribes to a room's events (one
 * keyed subscription, `*.<room>`) when its first client enters, and unsubscribes when the last
 * one leaves, so it receives the events of its own rooms only.
 */
@Injectable()
export class RoomMembership {
  private readonly rooms = new Map<string, { clients: Set<RoomClient>; subscription: EventSubscription }>();
  private readonly roomOf = new Map<RoomClient, string>();

  constructor(private readonly bus: DomainEventBus) {}

  /** Moves a client into a room (out of the one it was in), telling everyone in both rooms. */
  async join(client: RoomClient, roomId: string): Promise<void> {
    if (this.roomOf.get(client) === roomId) return;
    await this.leave(client);
    let room = this.rooms.get(roomId);
    if (!room) {
      const subscription = this.bus.subscribe(`*.${roomId}`, (event: object) => this.forward(roomId, event));
      room = { clients: new Set(), subscription };
      this.rooms.set(roomId, room);
    }
    room.clients.add(client);
    this.roomOf.set(client, roomId);
    await this.bus.publish(new PlayerEnteredRoom(client.player, roomId, new Date()));
  }

  async leave(client: RoomClient): Promise<void> {
    const roomId = this.roomOf.get(client);
    if (roomId === undefined) return;
    this.roomOf.delete(client);
    // Published while still subscribed, so that the leaver's own instance forwards it to the rest of the room.
    const published = this.bus.publish(new PlayerLeftRoom(client.player, roomId, new Date()));
    const room = this.rooms.get(roomId)!;
    room.clients.delete(client);
    if (room.clients.size === 0) {
      room.subscription.unsubscribe();
      this.rooms.delete(roomId);
    }
    await published;
  }

  /** Local clients per room. */
  snapshot(): Record<string, string[]> {
    return Object.fromEntries([...this.rooms].map(([id, room]) => [id, [...room.clients].map((c) => c.player)]));
  }

  /** Rooms this instance is subscribed to. */
  subscribedRooms(): string[] {
    return [...this.rooms.keys()];
  }

  private forward(roomId: string, event: object): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const message = toClientMessage(event);
    if (!message) return;
    for (const client of room.clients) client.send(message);
  }
}

/** What clients see: the same whether one instance runs or many. */
export function toClientMessage(event: object): object | undefined {
  if (event instanceof PlayerEnteredRoom) return { type: 'entered', room: event.roomId, player: event.playerId, at: event.at.toISOString() };
  if (event instanceof PlayerLeftRoom) return { type: 'left', room: event.roomId, player: event.playerId, at: event.at.toISOString() };
  return undefined;
}
