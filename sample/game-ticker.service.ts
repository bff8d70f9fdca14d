import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DomainEventBus, OnDomainEvent } from '../lib/index.js';
import { ClusterPresence } from './cluster-presence.service.js';
import { GameTick } from './game-events.js';
import { SAMPLE_CONFIG, type SampleConfig } from './sample-config.js';

/**
 * Publishes one GameTick per period for the whole cluster. The lease needs no store: the live
 * instance with the smallest id holds it. A starting instance waits one period, hearing the
 * others' heartbeats, before it may tick; when the holder stops, the next takes over within two
 * periods and continues the count.
 */
@Injectable()
export class GameTicker implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('GameTicker');
  private startedAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly bus: DomainEventBus,
    private readonly presence: ClusterPresence,
    @Inject(SAMPLE_CONFIG) private readonly config: SampleConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.config.tickIntervalMs);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  @OnDomainEvent(GameTick)
  onTick(tick: GameTick): void {
    this.presence.lastTick = Math.max(this.presence.lastTick, tick.tick);
  }

  holdsLease(): boolean {
    if (Date.now() - this.startedAt < this.config.tickIntervalMs) return false;
    const me = this.bus.instanceId;
    return this.presence.liveInstances().every((id) => id >= me);
  }

  private tick(): void {
    if (!this.holdsLease()) return;
    this.bus.publish(new GameTick(this.presence.lastTick + 1, new Date())).catch((error: Error) => this.logger.warn(`tick not sent: ${error.message}`));
  }
}
