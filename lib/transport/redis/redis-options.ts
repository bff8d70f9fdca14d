import { asString, integerSetting, oneOf, pick, readableFile, type Env } from '../../config/settings.js';
import type { IdempotencyStore } from '../../delivery/idempotency-store.js';

export interface RedisTlsOptions {
  /** CA certificate file that signs the server's certificate (for `rediss://`). */
  caFile?: string;
  /** Client certificate file, for servers that verify clients. */
  certFile?: string;
  /** Client key file, with certFile. */
  keyFile?: string;
}

export interface RedisOptions {
  /** `redis://[[user]:password@]host:port[/db]`, or `rediss://` for TLS. */
  url?: string;
  tls?: RedisTlsOptions;
  /** The stream key every event is appended to; other keys of the transport start with `<stream>:`. */
  stream?: string;
  /** Trims the stream to about this many entries (`MAXLEN ~`); 0 keeps every entry (unless maxAgeMs). */
  maxMessages?: number;
  /** Trims entries older than this (`MINID ~`); 0 keeps them (unless maxMessages). */
  maxAgeMs?: number;
  /** Window in which a re-published event id is stored once (a key per event id in Redis); 0 stores every publish. */
  duplicateWindowMs?: number;
  /** How long a publish may wait for Redis (also while disconnected) before it rejects. */
  publishTimeoutMs?: number;
  /** How long the first connect may take before the application refuses to start. */
  connectTimeoutMs?: number;
  /** Unacknowledged deliveries per subscription at once. */
  maxInFlight?: number;
  /**
   * An instance whose heartbeat is older than this is dead: the other members of its groups claim
   * what it had not acknowledged (within about 1.5 times this).
   */
  claimAfterMs?: number;
  /** Handled-event record: in Redis (cluster-wide, the default), in-process, or off. */
  idempotency?: 'redis' | 'memory' | 'off';
  /** Your own handled-event record; replaces `idempotency`. */
  idempotencyStore?: IdempotencyStore;
  /** How long handled event ids are remembered. */
  idempotencyWindowMs?: number;
  /** How long the consumer group of a group-less subscription outlives its instance. */
  broadcastInactiveMs?: number;
}

export interface ResolvedRedisOptions {
  readonly url: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  readonly stream: string;
  readonly maxMessages: number;
  readonly maxAgeMs: number;
  readonly duplicateWindowMs: number;
  readonly publishTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxInFlight: number;
  readonly claimAfterMs: number;
  readonly idempotency: 'redis' | 'memory' | 'off';
  readonly idempotencyStore?: IdempotencyStore;
  readonly idempotencyWindowMs: number;
  readonly broadcastInactiveMs: number;
}

/** The Redis settings from code, then the environment, then defaults; a bad one fails naming it. */
export function resolveRedisOptions(redis: RedisOptions = {}, env: Env = process.env): ResolvedRedisOptions {
  const int = (code: number | undefined, path: string, variable: string, min: number, fallback: number) =>
    integerSetting(env, code, `redis.${path}`, variable, min, fallback);
  const url = pick(redis.url, 'redis.url', env, 'REDIS_URL', asString);
  const parsed = URL.parse(url.value ?? 'redis://127.0.0.1:6379');
  if (!parsed || !['redis:', 'rediss:'].includes(parsed.protocol) || parsed.hostname === '') {
    return url.fail(`${JSON.stringify(url.value)} is not a Redis URL (redis://host:port or rediss://host:port)`);
  }
  const tls = redis.tls ?? {};
  const caFile = readableFile(pick(tls.caFile, 'redis.tls.caFile', env, 'REDIS_TLS_CA_FILE', asString));
  const certSetting = pick(tls.certFile, 'redis.tls.certFile', env, 'REDIS_TLS_CERT_FILE', asString);
  const keySetting = pick(tls.keyFile, 'redis.tls.keyFile', env, 'REDIS_TLS_KEY_FILE', asString);
  const certFile = readableFile(certSetting);
  const keyFile = readableFile(keySetting);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    (certFile === undefined ? certSetting : keySetting).fail('a client certificate needs both a cert file and a key file');
  }
  if ((caFile || certFile) && parsed.protocol !== 'rediss:') url.fail('TLS files are given: use a rediss:// URL');
  const stream = pick(redis.stream, 'redis.stream', env, 'EVENT_BUS_STREAM', asString);
  if (stream.value !== undefined && !/^[A-Za-z0-9_.:-]+$/.test(stream.value)) stream.fail('a stream key may hold letters, digits, "_", ".", ":" and "-" only');
  const claimAfterMs = int(redis.claimAfterMs, 'claimAfterMs', 'EVENT_BUS_CLAIM_AFTER_MS', 500, 10_000);
  return {
    url: url.value ?? 'redis://127.0.0.1:6379',
    tls: caFile || certFile ? { caFile, certFile, keyFile } : undefined,
    stream: stream.value ?? 'DOMAIN_EVENTS',
    maxMessages: int(redis.maxMessages, 'maxMessages', 'EVENT_BUS_STREAM_MAX_MESSAGES', 0, 0),
    maxAgeMs: int(redis.maxAgeMs, 'maxAgeMs', 'EVENT_BUS_STREAM_MAX_AGE_MS', 0, 0),
    duplicateWindowMs: int(redis.duplicateWindowMs, 'duplicateWindowMs', 'EVENT_BUS_DUPLICATE_WINDOW_MS', 0, 120_000),
    publishTimeoutMs: int(redis.publishTimeoutMs, 'publishTimeoutMs', 'EVENT_BUS_PUBLISH_TIMEOUT_MS', 1, 10_000),
    connectTimeoutMs: int(redis.connectTimeoutMs, 'connectTimeoutMs', 'REDIS_CONNECT_TIMEOUT_MS', 1, 5_000),
    maxInFlight: int(redis.maxInFlight, 'maxInFlight', 'EVENT_BUS_MAX_IN_FLIGHT', 1, 256),
    claimAfterMs,
    idempotency: oneOf(
      pick(redis.idempotency, 'redis.idempotency', env, 'EVENT_BUS_IDEMPOTENCY', asString as (raw: string) => 'redis'),
      ['redis', 'memory', 'off'],
      'redis',
    ),
    idempotencyStore: redis.idempotencyStore,
    idempotencyWindowMs: int(redis.idempotencyWindowMs, 'idempotencyWindowMs', 'EVENT_BUS_IDEMPOTENCY_WINDOW_MS', 1_000, 15 * 60_000),
    broadcastInactiveMs: int(redis.broadcastInactiveMs, 'broadcastInactiveMs', 'EVENT_BUS_BROADCAST_INACTIVE_MS', claimAfterMs, 60 * 60_000),
  };
}

/** The URL without its password, for logs and status. */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString().replace(/\/$/, '');
}
