import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { TransportInspection } from '../transport/event-transport.js';
import { INSTRUMENTATION_SCOPE, type OpenTelemetryApi } from './opentelemetry.js';

/** What the observable gauges read when the SDK collects. */
export interface MetricSources {
  /** Events published before bootstrap, held until the bus is active. */
  held(): number;
  /** The transport's server-side figures (JetStream consumers, dead letters); undefined where there are none. */
  inspect(): Promise<TransportInspection | undefined>;
}

/** Attributes per (destination, second key): built once, never per event. */
class AttributeCache {
  private readonly byDestination = new Map<string, Map<string, Attributes>>();

  get(destination: string, key: string, build: () => Attributes): Attributes {
    let byKey = this.byDestination.get(destination);
    if (!byKey) this.byDestination.set(destination, (byKey = new Map()));
    let attributes = byKey.get(key);
    if (!attributes) byKey.set(key, (attributes = build()));
    return attributes;
  }
}

const errorType = (error: unknown) => (error instanceof Error ? error.name : typeof error);

/**
 * Metrics per the OpenTelemetry messaging semantic conventions where they exist
 * (`messaging.client.sent.messages`, `messaging.client.consumed.messages`,
 * `messaging.client.operation.duration`, `messaging.process.duration`), and `domain_events.*` for
 * what they lack. Destinations are subjects without routing keys, so that series stay few.
 */
export class EventMetrics {
  private readonly sent: Counter;
  private readonly consumed: Counter;
  private readonly publishDuration: Histogram;
  private readonly processDuration: Histogram;
  private readonly handlerErrors: Counter;
  private readonly decodeErrors: Counter;
  private readonly retries: Counter;
  private readonly publishAttributes = new AttributeCache();
  private readonly consumeAttributes = new AttributeCache();
  private readonly handlerAttributes = new AttributeCache();

  private constructor(
    meter: Meter,
    private readonly system: string,
    sources: MetricSources,
  ) {
    this.sent = meter.createCounter('messaging.client.sent.messages', { unit: '{message}', description: 'Events handed to the transport' });
    this.consumed = meter.createCounter('messaging.client.consumed.messages', { unit: '{message}', description: 'Events delivered by the transport' });
    this.publishDuration = meter.createHistogram('messaging.client.operation.duration', { unit: 's', description: 'Publish, until the transport accepted the event' });
    this.processDuration = meter.createHistogram('messaging.process.duration', { unit: 's', description: 'One handler run' });
    this.handlerErrors = meter.createCounter('domain_events.handler.errors', { unit: '{error}', description: 'Handler runs that threw or rejected' });
    this.decodeErrors = meter.createCounter('domain_events.decode.errors', { unit: '{message}', description: 'Messages that could not become events' });
    this.retries = meter.createCounter('domain_events.retries', { unit: '{delivery}', description: 'Deliveries after the first (durable transports)' });
    const held = meter.createObservableGauge('domain_events.held', { unit: '{message}', description: 'Events published before bootstrap, not sent yet' });
    const deadLetters = meter.createObservableGauge('domain_events.dead_letters', { unit: '{message}', description: 'Dead letters kept' });
    const pending = meter.createObservableGauge('domain_events.consumer.pending', { unit: '{message}', description: 'Stored, not yet delivered, per consumer' });
    const ackPending = meter.createObservableGauge('domain_events.consumer.ack_pending', { unit: '{message}', description: 'Delivered, awaiting their ack, per consumer' });
    const bySystem = { 'messaging.system': this.system };
    meter.addBatchObservableCallback(
      async (result) => {
        result.observe(held, sources.held(), bySystem);
        const inspection = await sources.inspect();
        if (inspection?.deadLetters !== undefined) result.observe(deadLetters, inspection.deadLetters, bySystem);
        for (const consumer of inspection?.consumers ?? []) {
          const attributes = { ...bySystem, 'messaging.consumer.group.name': consumer.group, 'domain_events.consumer.name': consumer.name };
          result.observe(pending, consumer.pending, attributes);
          result.observe(ackPending, consumer.ackPending, attributes);
        }
      },
      [held, deadLetters, pending, ackPending],
    );
  }

  /** Metrics when a meter provider is registered (an SDK started before the application); else undefined. */
  static create(api: OpenTelemetryApi, system: string, sources: MetricSources): EventMetrics | undefined {
    const meter = api.metrics.getMeter(INSTRUMENTATION_SCOPE);
    if (meter.constructor === api.createNoopMeter().constructor) return undefined;
    return new EventMetrics(meter, system, sources);
  }

  published(destination: string, seconds: number, error?: unknown): void {
    let attributes = this.publishAttributes.get(destination, '', () => ({
      'messaging.system': this.system,
      'messaging.destination.name': destination,
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
    }));
    if (error !== undefined) attributes = { ...attributes, 'error.type': errorType(error) };
    this.sent.add(1, attributes);
    this.publishDuration.record(seconds, attributes);
  }

  consumedOne(destination: string, group: string | undefined, attempt: number): void {
    const attributes = this.consumeAttributes.get(destination, group ?? '', () => ({
      'messaging.system': this.system,
      'messaging.destination.name': destination,
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      ...(group === undefined ? {} : { 'messaging.consumer.group.name': group }),
    }));
    this.consumed.add(1, attributes);
    if (attempt > 1) this.retries.add(1, attributes);
  }

  /** One handler run: its duration, and the failure when it failed. */
  handled(destination: string, handler: string, seconds: number, error?: unknown): void {
    let attributes = this.handlerAttributes.get(destination, handler, () => ({
      'messaging.system': this.system,
      'messaging.destination.name': destination,
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      'code.function.name': handler,
    }));
    if (error !== undefined) {
      attributes = { ...attributes, 'error.type': errorType(error) };
      this.handlerErrors.add(1, attributes);
    }
    this.processDuration.record(seconds, attributes);
  }

  /** A message that could not become an event, by reason (the error's `reason` when it has one, else its name). */
  decodeFailed(error: unknown): void {
    const reason = (error as { reason?: unknown } | null)?.reason;
    this.decodeErrors.add(1, { 'messaging.system': this.system, 'error.type': typeof reason === 'string' ? reason : errorType(error) });
  }
}
