import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { asString, integerSetting, oneOf, pick, readableFile, type Env, type Setting } from '../../config/settings.js';
import type { PublishConfirm } from './publish-buffer.js';

export interface NatsTlsOptions {
  /** CA certificate file that signs the server's certificate. */
  caFile?: string;
  /** Client certificate file, for servers that verify clients. */
  certFile?: string;
  /** Client key file, with certFile. */
  keyFile?: string;
}

export interface NatsOptions {
  /** Server URLs (`nats://host:4222`); several for a cluster. */
  servers?: string | string[];
  /** Connection name shown by the server's monitoring (defaults to the instance id). */
  name?: string;
  token?: string;
  user?: string;
  password?: string;
  /** A `.creds` file (JWT and nkey seed), as issued by nsc. */
  credsFile?: string;
  /** An nkey user seed (`SU...`). */
  nkeySeed?: string;
  tls?: NatsTlsOptions;
  /** How long the first connect may take before the application refuses to start. */
  connectTimeoutMs?: number;
  /** Pause between reconnect attempts to one server. */
  reconnectTimeWaitMs?: number;
  /** Reconnect attempts per server before giving up; -1 (the default) never gives up. */
  maxReconnectAttempts?: number;
  /** How often the client pings the server; a connection is given up as stale after two unanswered pings. */
  pingIntervalMs?: number;
  /** Publishes accepted but not yet confirmed by the server (kept across reconnects) at most; beyond, publishes are refused. */
  publishBufferMessages?: number;
  /** The same bound in bytes (subjects and payloads). */
  publishBufferBytes?: number;
  /** When a publish's promise settles: once buffered (`buffer`), or once the server confirmed it (`server`). */
  publishConfirm?: PublishConfirm;
  /** Received messages waiting for handlers that fall behind at most; beyond, messages are dropped and counted. */
  receiveBufferMessages?: number;
  /** The same bound in bytes (payloads). */
  receiveBufferBytes?: number;
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
  pingIntervalMs: number;
  publishBuffer: { messages: number; bytes: number };
  publishConfirm: PublishConfirm;
  receiveBuffer: { messages: number; bytes: number };
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

/** The NATS connection settings from code, then the environment (`NATS_*`), then defaults; a bad one fails naming it. */
export function resolveNatsOptions(nats: NatsOptions = {}, env: Env = process.env, instanceId: string): ResolvedNatsOptions {
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

  const int = (code: number | undefined, path: string, variable: string, min: number, fallback: number) =>
    integerSetting(env, code, `nats.${path}`, variable, min, fallback);
  return {
    servers: servers(pick(nats.servers, 'nats.servers', env, 'NATS_URL', asString)),
    name: nats.name ?? instanceId,
    token: token.value,
    user: user.value,
    password: password.value,
    credsFile: readableFile(credsFile),
    nkeySeed: nkeySeed.value,
    tls: caFile || certFile ? { caFile, certFile, keyFile } : undefined,
    connectTimeoutMs: int(nats.connectTimeoutMs, 'connectTimeoutMs', 'NATS_CONNECT_TIMEOUT_MS', 1, 5_000),
    reconnectTimeWaitMs: int(nats.reconnectTimeWaitMs, 'reconnectTimeWaitMs', 'NATS_RECONNECT_TIME_WAIT_MS', 0, 1_000),
    maxReconnectAttempts: int(nats.maxReconnectAttempts, 'maxReconnectAttempts', 'NATS_MAX_RECONNECT_ATTEMPTS', -1, -1),
    pingIntervalMs: int(nats.pingIntervalMs, 'pingIntervalMs', 'NATS_PING_INTERVAL_MS', 100, 10_000),
    publishBuffer: {
      messages: int(nats.publishBufferMessages, 'publishBufferMessages', 'NATS_PUBLISH_BUFFER_MESSAGES', 1, 100_000),
      bytes: int(nats.publishBufferBytes, 'publishBufferBytes', 'NATS_PUBLISH_BUFFER_BYTES', 1024, 64 * 1024 * 1024),
    },
    publishConfirm: oneOf(
      pick(nats.publishConfirm, 'nats.publishConfirm', env, 'NATS_PUBLISH_CONFIRM', asString as (raw: string) => PublishConfirm),
      ['buffer', 'server'],
      'buffer',
    ),
    receiveBuffer: {
      messages: int(nats.receiveBufferMessages, 'receiveBufferMessages', 'NATS_RECEIVE_BUFFER_MESSAGES', 1, 100_000),
      bytes: int(nats.receiveBufferBytes, 'receiveBufferBytes', 'NATS_RECEIVE_BUFFER_BYTES', 1024, 64 * 1024 * 1024),
    },
  };
}

/** @internal The NATS connection options for resolved settings (auth, TLS, reconnect forever by default). */
export function natsConnectionOptions(options: ResolvedNatsOptions): ConnectionOptions {
  const connection: ConnectionOptions = {
    servers: options.servers,
    name: options.name,
    timeout: options.connectTimeoutMs,
    reconnectTimeWait: options.reconnectTimeWaitMs,
    maxReconnectAttempts: options.maxReconnectAttempts,
    pingInterval: options.pingIntervalMs,
    token: options.token,
    user: options.user,
    pass: options.password,
  };
  if (options.credsFile) connection.authenticator = credsAuthenticator(readFileSync(options.credsFile));
  if (options.nkeySeed) connection.authenticator = nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed));
  if (options.tls) connection.tls = { ...options.tls };
  return connection;
}
