import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DomainEventBus, OnDomainEvent } from '../lib/index.js';
import { InstanceHeartbeat } from './game-events.js';
import { RoomMembership } from './room-membership.service.js';
import { SAMPLE_CONFIG, type SampleConfig } from './sample-config.js';

/**
 * Which instances are alive, and who is in which room across the cluster: every instance
 * publishes a heartbeat with its rooms four times per tick period; one not heard for two
 * periods is gone.
 */
@Injectable()
export class ClusterPresence implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ClusterPresence');
  private readonly heartbeats = new Map<string, { at: number; beat: InstanceHeartbeat }>();
  private timer?: NodeJS.Timeout;
  /** The highest tick number heard of; the next lease holder continues from it. */
  lastTick = 0;

  constructor(
    private readonly bus: DomainEventBus,
    private readonly membership: RoomMembership,
    @Inject(SAMPLE_CONFIG) private readonly config: SampleConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.beat(), Math.max(1, Math.floor(this.config.tickIntervalMs / 4)));
    this.beat();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  @OnDomainEvent(InstanceHeartbeat)
  onHeartbeat(beat: InstanceHeartbeat): void {
    this.heartbeats.set(beat.instanceId, { at: Date.now(), beat });
    this.lastTick = Math.max(this.lastTick, beat.lastTick);
  }

  /** Ids of the instances heard within two tick periods, this one included once it has beaten. */
  liveInstances(): string[] {
    const cutoff = Date.now() - 2 * this.config.tickIntervalMs;
    for (const [id, { at }] of this.heartbeats) if (at < cutoff) this.heartbeats.delete(id);
    return [...this.heartbeats.keys()];
  }

  /** Players per room, across the live instances. */
  rooms(): Record<string, string[]> {
    this.liveInstances();
    const rooms: Record<string, string[]> = {};
    for (const { beat } of this.heartbeats.values()) {
      for (const [room, players] of Object.entries(beat.rooms)) (rooms[room] ??= []).push(...players);
    }
    for (const players of Object.values(rooms)) players.sort();
    return rooms;
  }

  private beat(): void {
    const beat = new InstanceHeartbeat(this.bus.instanceId, this.lastTick, this.membership.snapshot());
    this.bus.publish(beat).catch((error: Error) => this.logger.warn(`heartbeat not sent: ${error.message}`));
  }
}
