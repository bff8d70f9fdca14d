import { Logger } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayDisconnect, WebSocketGateway } from '@nestjs/websockets';
import type { RawData, WebSocket } from 'ws';
import { OnDomainEvent } from '../lib/index.js';
import { GameTick } from './game-events.js';
import { RoomMembership, type RoomClient } from './room-membership.service.js';

const ROOM_OR_PLAYER = /^[A-Za-z0-9_-]{1,64}$/;

class SocketClient implements RoomClient {
  player = '';
  constructor(readonly socket: WebSocket) {}

  send(message: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

/**
 * Players connect to `/ws` and send `{"type":"join","room":"arkham-1","player":"p1"}` to enter a room
 * (moving out of the one they were in) and `{"type":"leave"}` to leave; disconnecting leaves too.
 * They receive `entered` / `left` for their room and `tick` for every game tick.
 */
@WebSocketGateway({ path: '/ws' })
export class RoomsGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger('RoomsGateway');
  private readonly clients = new Map<WebSocket, SocketClient>();

  constructor(private readonly membership: RoomMembership) {}

  handleConnection(socket: WebSocket): void {
    const client = new SocketClient(socket);
    this.clients.set(socket, client);
    socket.on('message', (data: RawData) => {
      this.onMessage(client, data).catch((error: Error) => {
        this.logger.error(`message from ${client.player || 'a client'} failed: ${error.message}`, error.stack);
        client.send({ type: 'error', error: error.message });
      });
    });
  }

  async handleDisconnect(socket: WebSocket): Promise<void> {
    const client = this.clients.get(socket);
    this.clients.delete(socket);
    if (client) await this.membership.leave(client);
  }

  @OnDomainEvent(GameTick)
  onTick(tick: GameTick): void {
    const message = { type: 'tick', tick: tick.tick, at: tick.at.toISOString() };
    for (const client of this.clients.values()) client.send(message);
  }

  private async onMessage(client: SocketClient, data: RawData): Promise<void> {
    let message: { type?: unknown; room?: unknown; player?: unknown };
    try {
      message = JSON.parse(data.toString());
    } catch {
      client.send({ type: 'error', error: 'messages are JSON' });
      return;
    }
    if (message.type === 'join') {
      if (typeof message.room !== 'string' || !ROOM_OR_PLAYER.test(message.room) || typeof message.player !== 'string' || !ROOM_OR_PLAYER.test(message.player)) {
        client.send({ type: 'error', error: 'join needs "room" and "player": 1-64 letters, digits, "_" or "-"' });
        return;
      }
      if (client.player && client.player !== message.player) await this.membership.leave(client);
      client.player = message.player;
      await this.membership.join(client, message.room);
    } else if (message.type === 'leave') {
      await this.membership.leave(client);
    } else {
      client.send({ type: 'error', error: 'unknown message type: expected "join" or "leave"' });
    }
  }
}
