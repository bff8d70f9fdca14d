import { EventMetrics, type MetricSources } from './event-metrics.js';
import { EventTracing } from './event-tracing.js';
import { loadOpenTelemetry, messagingSystem } from './opentelemetry.js';

/**
 * Tracing and metrics of one bus, each present only when `@opentelemetry/api` is installed and an
 * SDK registered its provider before the application started: otherwise both are undefined and
 * the bus does no telemetry work at all.
 */
export class Telemetry {
  private sources?: MetricSources;

  private constructor(
    readonly tracing: EventTracing | undefined,
    readonly metrics: EventMetrics | undefined,
  ) {}

  static readonly off = new Telemetry(undefined, undefined);

  static async load(transport: string): Promise<Telemetry> {
    const api = await loadOpenTelemetry();
    if (!api) return Telemetry.off;
    const system = messagingSystem(transport);
    const telemetry: Telemetry = new Telemetry(
      EventTracing.create(api, system),
      EventMetrics.create(api, system, {
        held: () => telemetry.sources?.held() ?? 0,
        inspect: async () => telemetry.sources?.inspect(),
      }),
    );
    return telemetry.tracing || telemetry.metrics ? telemetry : Telemetry.off;
  }

  /** Where the observable gauges read from: set by the bus once it exists. */
  observe(sources: MetricSources): void {
    this.sources = sources;
  }
}
