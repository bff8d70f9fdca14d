/** The sample's own settings, from the environment (the event bus reads its own: EVENT_BUS_TRANSPORT, NATS_URL, …). */
export interface SampleConfig {
  port: number;
  tickIntervalMs: number;
}

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

export const SAMPLE_CONFIG = Symbol('SAMPLE_CONFIG');

export function sampleConfigFromEnv(): SampleConfig {
  return { port: positiveInteger('PORT', 3000), tickIntervalMs: positiveInteger('TICK_INTERVAL_MS', 10_000) };
}
