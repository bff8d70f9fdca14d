import { Injectable } from '@nestjs/common';
import { DomainEventBus, type EventBusStatus } from './domain-event-bus.js';
import type { TransportInspection } from './transport/event-transport.js';

/**
 * The shape of a `@nestjs/terminus` HealthIndicatorResult, spelled out here so that terminus stays
 * an optional peer: `HealthCheckService.check()` of terminus 11 and 12 takes it as it is.
 */
export type EventBusHealthResult<Key extends string = string> = Record<Key, { status: 'up' | 'down'; [detail: string]: unknown }>;

export interface EventBusHealthOptions {
  /** How long the server may take to answer (JetStream: stream and consumer info); past it the bus is down. Default 2000. */
  timeoutMs?: number;
  /** With the outbox: down when its oldest unsent event has waited longer than this (by default its lag is only reported). */
  maxOutboxLagMs?: number;
}

const WHY_NOT_READY: Record<Exclude<EventBusStatus['state'], 'ready'>, string> = {
  bootstrapping: 'the application has not finished bootstrapping: handlers are not subscribed yet',
  disconnected: 'no server is reachable',
  closing: 'the event bus is shutting down',
};

/** The inspection, or a rejection saying the server took longer than `ms`; the timer never outlives it. */
async function within(inspecting: Promise<TransportInspection>, ms: number): Promise<TransportInspection> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the server did not answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([inspecting, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A health indicator for `@nestjs/terminus` (11 or 12): up while the bus is ready (bootstrapped,
 * connected) and, on JetStream, its stream and every consumer exist; down, with the reason,
 * otherwise.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.eventBusHealth.isHealthy('eventBus')]); }
 * ```
 */
@Injectable()
export class EventBusHealthIndicator {
  constructor(private readonly bus: DomainEventBus) {}

  async isHealthy<Key extends string = 'eventBus'>(
    key: Key = 'eventBus' as Key,
    { timeoutMs = 2_000, maxOutboxLagMs }: EventBusHealthOptions = {},
  ): Promise<EventBusHealthResult<Key>> {
    const status = this.bus.status();
    const { transport } = status;
    const details: Record<string, unknown> = { transport: transport.transport, state: status.state, since: status.since };
    if (transport.server) details.server = transport.server;
    if (transport.lastError) details.lastError = transport.lastError;
    const reasons: string[] = [];
    const { outbox } = status;
    if (outbox) {
      details.outbox = { unsent: outbox.unsent, oldestUnsentMs: outbox.oldestUnsentMs, lastError: outbox.lastError };
      if (maxOutboxLagMs !== undefined && outbox.oldestUnsentMs > maxOutboxLagMs) {
        reasons.push(`the outbox's oldest unsent event has waited ${outbox.oldestUnsentMs} ms (more than ${maxOutboxLagMs})`);
      }
    }
    if (status.state !== 'ready') reasons.push(WHY_NOT_READY[status.state]);
    else {
      try {
        const server = await within(this.bus.inspect().then((inspection) => inspection.server), timeoutMs);
        reasons.push(...server.problems);
        if (server.deadLetters !== undefined) details.deadLetters = server.deadLetters;
      } catch (error) {
        reasons.push((error as Error).message);
      }
    }
    const result = reasons.length === 0 ? { status: 'up' as const, ...details } : { status: 'down' as const, reason: reasons.join('; '), ...details };
    return { [key]: result } as EventBusHealthResult<Key>;
  }
}
