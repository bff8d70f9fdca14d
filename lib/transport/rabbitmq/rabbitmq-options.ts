import { asInteger, asString, integerAtLeast, integerSetting, oneOf, pick, readableFile, type Env, type Setting } from '../../config/settings.js';
import type { IdempotencyStore } from '../../delivery/idempotency-store.js';

export interface RabbitMqTlsOptions {
  /** CA certificate file that signs the broker's certificate. */
  caFile?: string;
  /** Client certificate file, for brokers that verify clients. */
  certFile?: string;
  /** Client key file, with certFile. */
  keyFile?: string;
}

export interface RabbitMqOptions {
  /** `amqp://user:password@host:5672/vhost` (`amqps://` for TLS); the vhost is the URL's path. */
  url?: string;
  /** Connection name shown by the broker's management UI (defaults to the instance id). */
  name?: string;
  tls?: RabbitMqTlsOptions;
  /** The topic exchange events are published to; queues and helper exchanges are named after it. */
  exchange?: string;
  /** Type of the group and retry queues: `quorum` (replicated, counts deliveries) or `classic`. */
  queueType?: 'quorum' | 'classic';
  /** How long the first connect may take before the application refuses to start. */
  connectTimeoutMs?: number;
  /** First pause between reconnect attempts; doubled up to reconnectMaxDelayMs. */
  reconnectDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** How long a publish may wait for the broker's confirm (a reconnect included) before it rejects. */
  publishTimeoutMs?: number;
  /** Unacknowledged deliveries per subscription at once (the prefetch). */
  maxInFlight?: number;
  /** Window in which an event id re-published by this instance is sent once. */
  duplicateWindowMs?: number;
  /** Handled-event record, so that a redelivered event runs at most once per queue: in-process, or off. */
  idempotency?: 'memory' | 'off';
  /** Your own handled-event record (a database table, Redis…); replaces `idempotency`. */
  idempotencyStore?: IdempotencyStore;
  idempotencyWindowMs?: number;
  /** How long the queue of a group-less subscription survives its instance being gone (`x-expires`). */
  broadcastInactiveMs?: number;
  /**
   * Keep every event in a stream for this long, so that a new group can start from history
   * (`start: 'all'` or a Date); 0 (the default) keeps none.
   */
  archiveMaxAgeMs?: number;
}

export interface ResolvedRabbitMqOptions {
  readonly url: string;
  /** Where the URL points, without its credentials: for logs and status(). */
  readonly server: string;
  readonly name: string;
  readonly tls?: { caFile?: string; certFile?: string; keyFile?: string };
  readonly exchange: string;
  readonly queueType: 'quorum' | 'classic';
  readonly connectTimeoutMs: number;
  readonly reconnectDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly publishTimeoutMs: number;
  readonly maxInFlight: number;
  readonly duplicateWindowMs: number;
  readonly idempotency: 'memory' | 'off';
  readonly idempotencyStore?: IdempotencyStore;
  readonly idempotencyWindowMs: number;
  readonly broadcastInactiveMs: number;
  readonly archiveMaxAgeMs: number;
}

/** The URL, checked, and where it points without credentials. */
function amqpUrl(setting: Setting<string>): { url: string; server: string } {
  const url = setting.value ?? 'amqp://guest:guest@127.0.0.1:5672';
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (!parsed || !['amqp:', 'amqps:'].includes(parsed.protocol) || parsed.hostname === '') {
    setting.fail(`${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//…@'))} is not an AMQP URL (amqp://user:password@host:5672/vhost)`);
  }
  const vhost = decodeURIComponent(parsed.pathname.slice(1)) || '/';
  return { url, server: `${parsed.protocol}//${parsed.host} vhost ${vhost}` };
}

/** The RabbitMQ settings from code, then the environment (`RABBITMQ_*`, `EVENT_BUS_*`), then defaults; a bad one fails naming it. */
export function resolveRabbitMqOptions(rabbitmq: RabbitMqOptions = {}, env: Env = process.env, instanceId: string): ResolvedRabbitMqOptions {
  const int = (code: number | undefined, path: string, variable: string, min: number, fallback: number) =>
    integerSetting(env, code, `rabbitmq.${path}`, variable, min, fallback);
  const tls = rabbitmq.tls ?? {};
  const caFile = readableFile(pick(tls.caFile, 'rabbitmq.tls.caFile', env, 'RABBITMQ_TLS_CA_FILE', asString));
  const certSetting = pick(tls.certFile, 'rabbitmq.tls.certFile', env, 'RABBITMQ_TLS_CERT_FILE', asString);
  const keySetting = pick(tls.keyFile, 'rabbitmq.tls.keyFile', env, 'RABBITMQ_TLS_KEY_FILE', asString);
  const certFile = readableFile(certSetting);
  const keyFile = readableFile(keySetting);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    (certFile === undefined ? certSetting : keySetting).fail('a client certificate needs both a cert file and a key file');
  }
  const exchange = pick(rabbitmq.exchange, 'rabbitmq.exchange', env, 'RABBITMQ_EXCHANGE', asString);
  if (exchange.value !== undefined && !/^[A-Za-z0-9_.:-]{1,120}$/.test(exchange.value)) {
    exchange.fail('an exchange name may hold letters, digits, "_", "-", "." and ":" only (at most 120)');
  }
  if (exchange.value?.startsWith('amq.')) exchange.fail('names starting with "amq." are reserved by RabbitMQ');
  const reconnectDelayMs = int(rabbitmq.reconnectDelayMs, 'reconnectDelayMs', 'RABBITMQ_RECONNECT_DELAY_MS', 1, 1_000);
  const maxDelay = pick(rabbitmq.reconnectMaxDelayMs, 'rabbitmq.reconnectMaxDelayMs', env, 'RABBITMQ_RECONNECT_MAX_DELAY_MS', asInteger);
  const reconnectMaxDelayMs = integerAtLeast(maxDelay, reconnectDelayMs, Math.max(reconnectDelayMs, 30_000));
  const { url, server } = amqpUrl(pick(rabbitmq.url, 'rabbitmq.url', env, 'RABBITMQ_URL', asString));
  return {
    url,
    server,
    name: rabbitmq.name ?? instanceId,
    tls: caFile || certFile ? { caFile, certFile, keyFile } : undefined,
    exchange: exchange.value ?? 'domain-events',
    queueType: oneOf(pick(rabbitmq.queueType, 'rabbitmq.queueType', env, 'RABBITMQ_QUEUE_TYPE', asString as (raw: string) => 'quorum'), ['quorum', 'classic'], 'quorum'),
    connectTimeoutMs: int(rabbitmq.connectTimeoutMs, 'connectTimeoutMs', 'RABBITMQ_CONNECT_TIMEOUT_MS', 1, 5_000),
    reconnectDelayMs,
    reconnectMaxDelayMs,
    publishTimeoutMs: int(rabbitmq.publishTimeoutMs, 'publishTimeoutMs', 'RABBITMQ_PUBLISH_TIMEOUT_MS', 1, 10_000),
    maxInFlight: int(rabbitmq.maxInFlight, 'maxInFlight', 'EVENT_BUS_MAX_IN_FLIGHT', 1, 256),
    duplicateWindowMs: int(rabbitmq.duplicateWindowMs, 'duplicateWindowMs', 'EVENT_BUS_DUPLICATE_WINDOW_MS', 0, 120_000),
    idempotency: oneOf(
      pick(rabbitmq.idempotency, 'rabbitmq.idempotency', env, 'EVENT_BUS_IDEMPOTENCY', asString as (raw: string) => 'memory'),
      ['memory', 'off'],
      'memory',
    ),
    idempotencyStore: rabbitmq.idempotencyStore,
    idempotencyWindowMs: int(rabbitmq.idempotencyWindowMs, 'idempotencyWindowMs', 'EVENT_BUS_IDEMPOTENCY_WINDOW_MS', 1_000, 15 * 60_000),
    broadcastInactiveMs: int(rabbitmq.broadcastInactiveMs, 'broadcastInactiveMs', 'EVENT_BUS_BROADCAST_INACTIVE_MS', 1_000, 60 * 60_000),
    archiveMaxAgeMs: int(rabbitmq.archiveMaxAgeMs, 'archiveMaxAgeMs', 'RABBITMQ_ARCHIVE_MAX_AGE_MS', 0, 0),
  };
}
