import type * as OpenTelemetry from '@opentelemetry/api';

/** `@opentelemetry/api`, an optional peer: only its types are imported statically. */
export type OpenTelemetryApi = typeof OpenTelemetry;

/** The instrumentation scope of every span and metric of this package. */
export const INSTRUMENTATION_SCOPE = 'nestjs-domain-events';

/** The API when it is installed; undefined otherwise (tracing and metrics are then off, at no cost). */
export async function loadOpenTelemetry(): Promise<OpenTelemetryApi | undefined> {
  try {
    return await import('@opentelemetry/api');
  } catch {
    return undefined;
  }
}

/** `messaging.system` per transport: JetStream is NATS; a transport of the application's own is named by its status. */
export function messagingSystem(transport: string): string {
  return transport === 'jetstream' ? 'nats' : transport;
}
