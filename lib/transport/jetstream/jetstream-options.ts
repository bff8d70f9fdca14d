import { asInteger, asString, integerAtLeast, integerSetting, oneOf, pick, type Env } from '../../config/settings.js';
import { DEFAULT_IDEMPOTENCY_MAX_ENTRIES, type IdempotencyStore } from '../../delivery/idempotency-store.js';

export interface JetStreamOptions {
  /** Stream that stores `<prefix>.>` (created or updated at startup). */
  stream?: string;
  storage?: 'file' | 'memory';
  replicas?: number;
  /** Oldest event kept; 0 keeps events until other limits apply. */
  maxAgeMs?: number;
  maxMessages?: number;
  maxBytes?: number;
  /** Window in which a re-published event id is stored once. */
  duplicateWindowMs?: number;
  /**
   * How long a publish keeps trying to have the stream store the event (through leader elections and
   * reconnects) before it rejects; below duplicateWindowMs, so that a retried publish is stored once.
   */
  publishTimeoutMs?: number;
  /** Publishes awaiting their ack at once; more wait for a slot (the wait counts against publishTimeoutMs). */
  maxPublishesInFlight?: number;
  /** How long a delivery may stay unacknowledged before it is redelivered (handlers running longer keep it with working()). */
  ackWaitMs?: number;
  /** Unacknowledged deliveries per consumer at once. */
  maxInFlight?: number;
  /** Handled-event record, so that a redelivered event runs at most once per group: in-process, NATS KV (cluster-wide), or off. */
  idempotency?: 'memory' | 'kv' | 'off';
  /** Your own handled-event record (a database table, Redis…); replaces `idempotency`. */
  idempotencyStore?: IdempotencyStore;
  /** How long handled event ids are remembered. */
  idempotencyWindowMs?: number;
  /** `idempotency: 'memory'`: ids remembered at most; past it the oldest are forgotten first. */
  idempotencyMaxEntries?: number;
  /** How long the consumer of a group-less subscription survives its instance being gone. */
  broadcastInactiveMs?: number;
}

export interface ResolvedJetStreamOptions {
  stream: string;
  storage: 'file' | 'memory';
  replicas: number;
  maxAgeMs: number;
  maxMessages: number;
  maxBytes: number;
  duplicateWindowMs: number;
  publishTimeoutMs: number;
  maxPublishesInFlight: number;
  ackWaitMs: number;
  maxInFlight: number;
  idempotency: 'memory' | 'kv' | 'off';
  idempotencyStore?: IdempotencyStore;
  idempotencyWindowMs: number;
  idempotencyMaxEntries: number;
  broadcastInactiveMs: number;
}

/** The JetStream settings from code, then the environment, then defaults; a bad one fails naming it. */
export function resolveJetStreamOptions(js: JetStreamOptions = {}, env: Env = process.env): ResolvedJetStreamOptions {
  const int = (code: number | undefined, path: string, variable: string, min: number, fallback: number) =>
    integerSetting(env, code, `jetstream.${path}`, variable, min, fallback);
  const stream = pick(js.stream, 'jetstream.stream', env, 'EVENT_BUS_STREAM', asString);
  if (stream.value !== undefined && !/^[A-Za-z0-9_-]+$/.test(stream.value)) stream.fail('a stream name may hold letters, digits, "_" and "-" only');
  const duplicateWindowMs = int(js.duplicateWindowMs, 'duplicateWindowMs', 'EVENT_BUS_DUPLICATE_WINDOW_MS', 1, 120_000);
  const publishTimeout = pick(js.publishTimeoutMs, 'jetstream.publishTimeoutMs', env, 'EVENT_BUS_PUBLISH_TIMEOUT_MS', asInteger);
  // Long enough for a leader election or two (4-9 s each), short of the duplicate window.
  const publishTimeoutMs = integerAtLeast(publishTimeout, 1, Math.min(30_000, duplicateWindowMs - 1));
  if (publishTimeoutMs >= duplicateWindowMs) {
    publishTimeout.fail(`must be below the duplicate window (${duplicateWindowMs} ms): a publish retried past it would be stored twice`);
  }
  return {
    stream: stream.value ?? 'DOMAIN_EVENTS',
    storage: oneOf(pick(js.storage, 'jetstream.storage', env, 'EVENT_BUS_STREAM_STORAGE', asString as (raw: string) => 'file'), ['file', 'memory'], 'file'),
    replicas: int(js.replicas, 'replicas', 'EVENT_BUS_STREAM_REPLICAS', 1, 1),
    maxAgeMs: int(js.maxAgeMs, 'maxAgeMs', 'EVENT_BUS_STREAM_MAX_AGE_MS', 0, 0),
    maxMessages: int(js.maxMessages, 'maxMessages', 'EVENT_BUS_STREAM_MAX_MESSAGES', -1, -1),
    maxBytes: int(js.maxBytes, 'maxBytes', 'EVENT_BUS_STREAM_MAX_BYTES', -1, -1),
    duplicateWindowMs,
    publishTimeoutMs,
    maxPublishesInFlight: int(js.maxPublishesInFlight, 'maxPublishesInFlight', 'EVENT_BUS_MAX_PUBLISHES_IN_FLIGHT', 1, 1_024),
    ackWaitMs: int(js.ackWaitMs, 'ackWaitMs', 'EVENT_BUS_ACK_WAIT_MS', 1_000, 30_000),
    maxInFlight: int(js.maxInFlight, 'maxInFlight', 'EVENT_BUS_MAX_IN_FLIGHT', 1, 256),
    idempotency: oneOf(
      pick(js.idempotency, 'jetstream.idempotency', env, 'EVENT_BUS_IDEMPOTENCY', asString as (raw: string) => 'memory'),
      ['memory', 'kv', 'off'],
      'memory',
    ),
    idempotencyStore: js.idempotencyStore,
    idempotencyWindowMs: int(js.idempotencyWindowMs, 'idempotencyWindowMs', 'EVENT_BUS_IDEMPOTENCY_WINDOW_MS', 1_000, 15 * 60_000),
    idempotencyMaxEntries: int(js.idempotencyMaxEntries, 'idempotencyMaxEntries', 'EVENT_BUS_IDEMPOTENCY_MAX_ENTRIES', 1, DEFAULT_IDEMPOTENCY_MAX_ENTRIES),
    broadcastInactiveMs: int(js.broadcastInactiveMs, 'broadcastInactiveMs', 'EVENT_BUS_BROADCAST_INACTIVE_MS', 1_000, 60 * 60_000),
  };
}
