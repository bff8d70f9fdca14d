import { Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { DeadLetters, DomainEventBus, type EventSubscription } from '../lib/index.js';
import { ClusterPresence } from './cluster-presence.service.js';
import { InstanceHeartbeat } from './game-events.js';
import { RoomMembership } from './room-membership.service.js';

export interface FlowingEvent {
  type: string;
  key?: string;
  origin?: string;
  local: boolean;
  time: string;
  data: object;
}

/**
 * What the admin page shows. While a page is open the instance subscribes to every event (`>`)
 * and streams them (heartbeats counted, not streamed); when the last page closes it unsubscribes,
 * so that otherwise it receives only the events of its own rooms. Players per room come from the
 * cluster's heartbeats; figures per type and handler, the connection, and (JetStream) consumers and
 * dead letters from the bus's own inspection.
 */
@Injectable()
export class AdminFeed {
  private readonly counters: Record<string, number> = {};
  private readonly watchers = new Set<(event: FlowingEvent) => void>();
  private subscription?: EventSubscription;

  constructor(
    private readonly bus: DomainEventBus,
    private readonly deadLetters: DeadLetters,
    private readonly membership: RoomMembership,
    private readonly presence: ClusterPresence,
  ) {}

  events(): Observable<FlowingEvent> {
    return new Observable<FlowingEvent>((subscriber) => {
      const watcher = (event: FlowingEvent) => subscriber.next(event);
      this.watchers.add(watcher);
      this.subscription ??= this.bus.subscribe('>', (event: object, context) => {
        this.counters[context.type] = (this.counters[context.type] ?? 0) + 1;
        if (event instanceof InstanceHeartbeat) return;
        const flowing = { type: context.type, key: context.key, origin: context.origin, local: context.local, time: context.time.toISOString(), data: event };
        for (const watch of this.watchers) watch(flowing);
      });
      return () => {
        this.watchers.delete(watcher);
        if (this.watchers.size === 0) {
          this.subscription?.unsubscribe();
          this.subscription = undefined;
        }
      };
    });
  }

  async state() {
    const bus = await this.bus.inspect();
    // Durable transports only: the oldest letters, each replayable from the page.
    const deadLetters = bus.server.deadLetters === undefined ? undefined : (await this.deadLetters.page({ limit: 20 })).letters;
    return {
      instanceId: this.bus.instanceId,
      instances: this.presence.liveInstances(),
      counters: this.counters,
      rooms: this.presence.rooms(),
      localRooms: this.membership.snapshot(),
      bus,
      deadLetters,
    };
  }

  /** Sends an event's dead letters back to the groups that gave up on it; resolves to how many. */
  replay(id: string): Promise<number> {
    return this.deadLetters.replay(id);
  }
}
