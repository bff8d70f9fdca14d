import { accessSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { EventBusModuleOptions, TransportName } from './event-bus-options.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { MemoryBroker } from './transport/memory-broker.js';
import { subjectProblem } from './subject-pattern.js';
import { tokenProblem } from './wire-name.js';

export class EventBusConfigError extends Error {
  override readonly name = 'EventBusConfigError';
}

export interface ResolvedNatsOptions {
  servers: string[];
  name: string;
  token?: string;
  user?: string;
  password?: string;
  credsFile?: string;
  nkeySeed?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  connectTimeoutMs: number;
  reconnectTimeWaitMs: number;
  maxReconnectAttempts: number;
}

export interface ResolvedJetStreamOptions {
  stream: string;
  storage: 'file' | 'memory';
  replicas: number;
  maxAgeMs: number;
  maxMessages: number;
  maxBytes: number;
  duplicateWindowMs: number;
  ackWaitMs: number;
  maxInFlight: number;
  idempotency: 'memory' | 'kv' | 'off';
  idempotencyStore?: IdempotencyStore;
  idempotencyWindowMs: number;
  shutdownTimeoutMs: number;
  broadcastInactiveMs: number;
}

export interface ResolvedRetryOptions {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface ResolvedEventBusOptions {
  transport: TransportName;
  subjectPrefix: string;
  instanceId: string;
  source: string;
  memory: { codec: boolean; broker?: MemoryBroker };
  nats: ResolvedNatsOptions;
  jetstream: ResolvedJetStreamOptions;
  retry: ResolvedRetryOptions;
}

type Env = Record<string, string | undefined>;

/** One setting: the option path in code, the environment variable, and where the value came from. */
class Setting<T> {
  constructor(
    readonly value: T | undefined,
    readonly label: string,
  ) {}

  fail(why: string): never {
    throw new EventBusConfigError(`${this.label}: ${why}`);
  }
}

function pick<T>(code: T | undefined, optionPath: string, env: Env, variable: string, parse: (raw: string, s: Setting<T>) => T): Setting<T> {
  if (code !== undefined) return new Setting(code, `option ${optionPath}`);
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return new Setting<T>(undefined, `option ${optionPath} or environment variable ${variable}`);
  const setting = new Setting<T>(undefined, `environment variable ${variable}`);
  return new Setting(parse(raw.trim(), setting), setting.label);
}

const asString = (raw: string) => raw;
const asBoolean = (raw: string, s: Setting<boolean>) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  return s.fail(`expected true or false, got ${JSON.stringify(raw)}`);
};
const asInteger = (raw: string, s: Setting<number>) => {
  if (!/^-?\d+$/.test(raw)) s.fail(`expected an integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
};

function oneOf<T extends string>(setting: Setting<T>, allowed: readonly T[], fallback: T): T {
  const value = setting.value ?? fallback;
  if (!allowed.includes(value)) setting.fail(`expected ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

function integerAtLeast(setting: Setting<number>, min: number, fallback: number): number {
  const value = setting.value ?? fallback;
  if (!Number.isInteger(value) || value < min) setting.fail(`expected an integer >= ${min}, got ${value}`);
  return value;
}

function readableFile(setting: Setting<string>): string | undefined {
  if (setting.value === undefined) return undefined;
  try {
    accessSync(setting.value, constants.R_OK);
  } catch {
    setting.fail(`cannot read file ${JSON.stringify(setting.value)}`);
  }
  return setting.value;
}

function servers(setting: Setting<string | string[]>): string[] {
  const list = (Array.isArray(setting.value) ? setting.value : (setting.value ?? 'nats://127.0.0.1:4222').split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) setting.fail('no server given');
  for (const server of list) {
    const url = /^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`;
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (!parsed || !['nats:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol) || parsed.hostname === '') {
      setting.fail(`${JSON.stringify(server)} is not a NATS server URL (nats://host:port)`);
    }
  }
  return list;
}

/**
 * Merges options given in code (they win) with the environment, then defaults, and
 * validates the result; a bad value fails startup with the option or variable named.
 */
export function resolveEventBusOptions(options: EventBusModuleOptions = {}, env: Env = process.env): ResolvedEventBusOptions {
  const transport = oneOf(
    pick(options.transport, 'transport', env, 'EVENT_BUS_TRANSPORT', asString as (raw: string) => TransportName),
    ['memory', 'nats', 'jetstream'],
    'memory',
  );

  const prefix = pick(options.subjectPrefix, 'subjectPrefix', env, 'EVENT_BUS_SUBJECT_PREFIX', asString);
  const subjectPrefix = prefix.value ?? 'events.domain';
  const prefixProblem = subjectProblem(subjectPrefix);
  if (prefixProblem) prefix.fail(prefixProblem);

  const id = pick(options.instanceId, 'instanceId', env, 'EVENT_BUS_INSTANCE_ID', asString);
  const instanceId = id.value ?? `i${randomBytes(9).toString('base64url')}`;
  const idProblem = tokenProblem(instanceId);
  if (idProblem) id.fail(idProblem);

  const source = pick(options.source, 'source', env, 'EVENT_BUS_SOURCE', asString);
  if (source.value === '') source.fail('must not be empty');

  const nats = options.nats ?? {};
  const tls = nats.tls ?? {};
  const token = pick(nats.token, 'nats.token', env, 'NATS_TOKEN', asString);
  const user = pick(nats.user, 'nats.user', env, 'NATS_USER', asString);
  const password = pick(nats.password, 'nats.password', env, 'NATS_PASSWORD', asString);
  const credsFile = pick(nats.credsFile, 'nats.credsFile', env, 'NATS_CREDS_FILE', asString);
  const nkeySeed = pick(nats.nkeySeed, 'nats.nkeySeed', env, 'NATS_NKEY_SEED', asString);
  if (user.value !== undefined && password.value === undefined) password.fail(`required with ${user.label}`);
  if (password.value !== undefined && user.value === undefined) user.fail(`required with ${password.label}`);
  const methods = [token, user, credsFile, nkeySeed].filter((s) => s.value !== undefined);
  if (methods.length > 1) methods[1].fail(`conflicts with ${methods[0].label}: choose one way to authenticate`);
  if (nkeySeed.value !== undefined && !/^SU[A-Z2-7]+$/.test(nkeySeed.value)) nkeySeed.fail('is not an nkey user seed (SU...)');

  const caFile = readableFile(pick(tls.caFile, 'nats.tls.caFile', env, 'NATS_TLS_CA_FILE', asString));
  const certSetting = pick(tls.certFile, 'nats.tls.certFile', env, 'NATS_TLS_CERT_FILE', asString);
  const keySetting = pick(tls.keyFile, 'nats.tls.keyFile', env, 'NATS_TLS_KEY_FILE', asString);
  const certFile = readableFile(certSetting);
  const keyFile = readableFile(keySetting);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    (certFile === undefined ? certSetting : keySetting).fail('a client certificate needs both a cert file and a key file');
  }

  const js = options.jetstream ?? {};
  const retry = options.retry ?? {};
  const int = (code: number | undefined, path: string, variable: string, min: number, fallback: number) =>
    integerAtLeast(pick(code, path, env, variable, asInteger), min, fallback);
  const stream = pick(js.stream, 'jetstream.stream', env, 'EVENT_BUS_STREAM', asString);
  if (stream.value !== undefined && !/^[A-Za-z0-9_-]+$/.test(stream.value)) stream.fail('a stream name may hold letters, digits, "_" and "-" only');
  const duplicateWindowMs = int(js.duplicateWindowMs, 'jetstream.duplicateWindowMs', 'EVENT_BUS_DUPLICATE_WINDOW_MS', 1, 120_000);
  const initialDelayMs = int(retry.initialDelayMs, 'retry.initialDelayMs', 'EVENT_BUS_RETRY_INITIAL_DELAY_MS', 0, 200);
  const maxDelay = pick(retry.maxDelayMs, 'retry.maxDelayMs', env, 'EVENT_BUS_RETRY_MAX_DELAY_MS', asInteger);
  const maxDelayMs = integerAtLeast(maxDelay, 0, 30_000);
  if (maxDelayMs < initialDelayMs) maxDelay.fail(`must not be below the initial delay (${initialDelayMs} ms)`);

  return {
    transport,
    subjectPrefix,
    instanceId,
    source: source.value ?? '/nestjs-domain-events',
    memory: {
      codec: pick(options.memory?.codec, 'memory.codec', env, 'EVENT_BUS_MEMORY_CODEC', asBoolean).value ?? false,
      broker: options.memory?.broker,
    },
    nats: {
      servers: servers(pick(nats.servers, 'nats.servers', env, 'NATS_URL', asString)),
      name: nats.name ?? instanceId,
      token: token.value,
      user: user.value,
      password: password.value,
      credsFile: readableFile(credsFile),
      nkeySeed: nkeySeed.value,
      tls: caFile || certFile ? { caFile, certFile, keyFile } : undefined,
      connectTimeoutMs: integerAtLeast(
        pick(nats.connectTimeoutMs, 'nats.connectTimeoutMs', env, 'NATS_CONNECT_TIMEOUT_MS', asInteger), 1, 5_000),
      reconnectTimeWaitMs: integerAtLeast(
        pick(nats.reconnectTimeWaitMs, 'nats.reconnectTimeWaitMs', env, 'NATS_RECONNECT_TIME_WAIT_MS', asInteger), 0, 1_000),
      maxReconnectAttempts: integerAtLeast(
        pick(nats.maxReconnectAttempts, 'nats.maxReconnectAttempts', env, 'NATS_MAX_RECONNECT_ATTEMPTS', asInteger), -1, -1),
    },
    jetstream: {
      stream: stream.value ?? 'DOMAIN_EVENTS',
      storage: oneOf(pick(js.storage, 'jetstream.storage', env, 'EVENT_BUS_STREAM_STORAGE', asString as (raw: string) => 'file'), ['file', 'memory'], 'file'),
      replicas: int(js.replicas, 'jetstream.replicas', 'EVENT_BUS_STREAM_REPLICAS', 1, 1),
      maxAgeMs: int(js.maxAgeMs, 'jetstream.maxAgeMs', 'EVENT_BUS_STREAM_MAX_AGE_MS', 0, 0),
      maxMessages: int(js.maxMessages, 'jetstream.maxMessages', 'EVENT_BUS_STREAM_MAX_MESSAGES', -1, -1),
      maxBytes: int(js.maxBytes, 'jetstream.maxBytes', 'EVENT_BUS_STREAM_MAX_BYTES', -1, -1),
      duplicateWindowMs,
      ackWaitMs: int(js.ackWaitMs, 'jetstream.ackWaitMs', 'EVENT_BUS_ACK_WAIT_MS', 1_000, 30_000),
      maxInFlight: int(js.maxInFlight, 'jetstream.maxInFlight', 'EVENT_BUS_MAX_IN_FLIGHT', 1, 256),
      idempotency: oneOf(
        pick(js.idempotency, 'jetstream.idempotency', env, 'EVENT_BUS_IDEMPOTENCY', asString as (raw: string) => 'memory'),
        ['memory', 'kv', 'off'],
        'memory',
      ),
      idempotencyStore: js.idempotencyStore,
      idempotencyWindowMs: int(js.idempotencyWindowMs, 'jetstream.idempotencyWindowMs', 'EVENT_BUS_IDEMPOTENCY_WINDOW_MS', 1_000, 15 * 60_000),
      shutdownTimeoutMs: int(js.shutdownTimeoutMs, 'jetstream.shutdownTimeoutMs', 'EVENT_BUS_SHUTDOWN_TIMEOUT_MS', 0, 10_000),
      broadcastInactiveMs: int(js.broadcastInactiveMs, 'jetstream.broadcastInactiveMs', 'EVENT_BUS_BROADCAST_INACTIVE_MS', 1_000, 60 * 60_000),
    },
    retry: {
      attempts: int(retry.attempts, 'retry.attempts', 'EVENT_BUS_RETRY_ATTEMPTS', 1, 5),
      initialDelayMs,
      maxDelayMs,
    },
  };
}
