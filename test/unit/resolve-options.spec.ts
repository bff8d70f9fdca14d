import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBusConfigError, type Env } from '../../lib/config/settings.js';
import type { EventBusModuleOptions } from '../../lib/event-bus-options.js';
import { resolveEventBusOptions } from '../../lib/resolve-options.js';
import { resolveJetStreamOptions } from '../../lib/transport/jetstream/jetstream-options.js';
import { resolveMemoryOptions } from '../../lib/transport/memory/memory-options.js';
import { resolveNatsOptions } from '../../lib/transport/nats/nats-options.js';

/** Every section resolved, as the module and its transports do at startup. */
function resolveAll(options: EventBusModuleOptions, env: Env) {
  const core = resolveEventBusOptions(options, env);
  return {
    ...core,
    memory: resolveMemoryOptions(options.memory, env),
    nats: resolveNatsOptions(options.nats, env, core.instanceId),
    jetstream: resolveJetStreamOptions(options.jetstream, env),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'options-'));
const file = join(dir, 'readable.pem');
writeFileSync(file, 'x');

describe('resolveEventBusOptions', () => {
  it('has defaults that need nothing', () => {
    const options = resolveAll({}, {});
    expect(options).toMatchObject({
      transport: 'memory',
      subjectPrefix: 'events.domain',
      source: '/nestjs-domain-events',
      memory: { codec: false },
      nats: {
        servers: ['nats://127.0.0.1:4222'], connectTimeoutMs: 5000, reconnectTimeWaitMs: 1000, maxReconnectAttempts: -1, pingIntervalMs: 10_000,
        publishBuffer: { messages: 100_000, bytes: 64 * 1024 * 1024 }, publishConfirm: 'buffer',
        receiveBuffer: { messages: 100_000, bytes: 64 * 1024 * 1024 },
      },
      jetstream: {
        stream: 'DOMAIN_EVENTS', storage: 'file', replicas: 1, duplicateWindowMs: 120_000, idempotency: 'memory',
        publishTimeoutMs: 30_000, maxPublishesInFlight: 1_024, idempotencyMaxEntries: 100_000,
      },
      retry: { attempts: 5, initialDelayMs: 200, maxDelayMs: 30_000, handlerTimeoutMs: 60_000 },
      shutdownTimeoutMs: 10_000,
      codec: { mode: 'structured', maxMessageBytes: 1024 * 1024 },
    });
    expect(resolveAll({}, { EVENT_BUS_CLOUDEVENTS_MODE: 'binary', EVENT_BUS_MAX_MESSAGE_BYTES: '65536', EVENT_BUS_SOURCE: 'urn:game:eu' })).toMatchObject({
      codec: { mode: 'binary', maxMessageBytes: 65_536 }, source: 'urn:game:eu',
    });
    expect(options.instanceId).toMatch(/^i[A-Za-z0-9_-]{12}$/);
    expect(resolveAll({}, {}).instanceId).not.toBe(options.instanceId);
  });

  it('reads the environment where code is silent, and lets code win', () => {
    const env = {
      EVENT_BUS_TRANSPORT: 'jetstream', NATS_URL: ' nats://a:4222 , b:4223 ', EVENT_BUS_SUBJECT_PREFIX: 'game.events',
      EVENT_BUS_INSTANCE_ID: 'pod-1', EVENT_BUS_MEMORY_CODEC: 'yes', EVENT_BUS_RETRY_ATTEMPTS: '3', EVENT_BUS_STREAM: 'GAME',
      NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_PUBLISH_BUFFER_MESSAGES: '500', NATS_PUBLISH_BUFFER_BYTES: '65536', NATS_PUBLISH_CONFIRM: 'server',
      NATS_RECEIVE_BUFFER_MESSAGES: '50', NATS_RECEIVE_BUFFER_BYTES: '4096', NATS_PING_INTERVAL_MS: '2000', EVENT_BUS_SHUTDOWN_TIMEOUT_MS: '2500',
      EVENT_BUS_PUBLISH_TIMEOUT_MS: '45000', EVENT_BUS_MAX_PUBLISHES_IN_FLIGHT: '64', EVENT_BUS_IDEMPOTENCY_MAX_ENTRIES: '5000', EVENT_BUS_HANDLER_TIMEOUT_MS: '2500',
    };
    expect(resolveAll({}, env)).toMatchObject({
      transport: 'jetstream', subjectPrefix: 'game.events', instanceId: 'pod-1', memory: { codec: true },
      nats: {
        servers: ['nats://a:4222', 'b:4223'], user: 'u', password: 'p', name: 'pod-1', pingIntervalMs: 2000,
        publishBuffer: { messages: 500, bytes: 65536 }, publishConfirm: 'server', receiveBuffer: { messages: 50, bytes: 4096 },
      },
      retry: { attempts: 3, handlerTimeoutMs: 2_500 }, shutdownTimeoutMs: 2500,
      jetstream: { stream: 'GAME', publishTimeoutMs: 45_000, maxPublishesInFlight: 64, idempotencyMaxEntries: 5_000 },
    });
    expect(resolveAll({ transport: 'nats', instanceId: 'code', retry: { attempts: 9 }, nats: { servers: ['nats://c:1'] } }, env)).toMatchObject({
      transport: 'nats', instanceId: 'code', retry: { attempts: 9 }, nats: { servers: ['nats://c:1'] },
    });
  });

  it.each([
    [{ EVENT_BUS_TRANSPORT: 'kafka' }, 'environment variable EVENT_BUS_TRANSPORT: expected "memory", "nats", "jetstream", "redis", "rabbitmq", got "kafka"'],
    [{ EVENT_BUS_SUBJECT_PREFIX: 'events.*' }, 'environment variable EVENT_BUS_SUBJECT_PREFIX: token "*"'],
    [{ EVENT_BUS_SUBJECT_PREFIX: 'events..x' }, 'environment variable EVENT_BUS_SUBJECT_PREFIX: token "" must not be empty'],
    [{ EVENT_BUS_INSTANCE_ID: 'pod.1' }, 'environment variable EVENT_BUS_INSTANCE_ID: must not contain'],
    [{ EVENT_BUS_INSTANCE_ID: 'p'.repeat(129) }, 'environment variable EVENT_BUS_INSTANCE_ID: must be at most 128 characters, got 129'],
    [{ EVENT_BUS_SUBJECT_PREFIX: 'p'.repeat(257) }, 'environment variable EVENT_BUS_SUBJECT_PREFIX: must be at most 256 characters, got 257'],
    [{ EVENT_BUS_SOURCE: 'billing service' }, 'environment variable EVENT_BUS_SOURCE: must be a URI-reference (RFC 3986), such as /billing or urn:billing:eu (no spaces; percent-encode other characters); got "billing service"'],
    [{ EVENT_BUS_SOURCE: 'a:b:c d' }, 'environment variable EVENT_BUS_SOURCE: must be a URI-reference'],
    [{ EVENT_BUS_CLOUDEVENTS_MODE: 'batch' }, 'environment variable EVENT_BUS_CLOUDEVENTS_MODE: expected "structured", "binary", got "batch"'],
    [{ EVENT_BUS_MAX_MESSAGE_BYTES: '100' }, 'environment variable EVENT_BUS_MAX_MESSAGE_BYTES: expected an integer >= 1024, got 100'],
    [{ EVENT_BUS_MEMORY_CODEC: 'maybe' }, 'environment variable EVENT_BUS_MEMORY_CODEC: expected true or false, got "maybe"'],
    [{ NATS_URL: 'http://host:80' }, 'environment variable NATS_URL: "http://host:80" is not a NATS server URL'],
    [{ NATS_URL: 'nats://' }, 'environment variable NATS_URL: "nats://" is not a NATS server URL'],
    [{ NATS_URL: ' , ' }, 'environment variable NATS_URL: no server given'],
    [{ NATS_USER: 'u' }, 'option nats.password or environment variable NATS_PASSWORD: required with environment variable NATS_USER'],
    [{ NATS_TOKEN: 't', NATS_USER: 'u', NATS_PASSWORD: 'p' }, 'environment variable NATS_USER: conflicts with environment variable NATS_TOKEN'],
    [{ NATS_NKEY_SEED: 'not-a-seed' }, 'environment variable NATS_NKEY_SEED: is not an nkey user seed'],
    [{ NATS_CREDS_FILE: '/no/such/file.creds' }, 'environment variable NATS_CREDS_FILE: cannot read file "/no/such/file.creds"'],
    [{ NATS_TLS_CA_FILE: '/no/such/ca.pem' }, 'environment variable NATS_TLS_CA_FILE: cannot read file'],
    [{ NATS_TLS_CERT_FILE: file }, 'option nats.tls.keyFile or environment variable NATS_TLS_KEY_FILE: a client certificate needs both a cert file and a key file'],
    [{ NATS_CONNECT_TIMEOUT_MS: 'soon' }, 'environment variable NATS_CONNECT_TIMEOUT_MS: expected an integer, got "soon"'],
    [{ NATS_CONNECT_TIMEOUT_MS: '0' }, 'environment variable NATS_CONNECT_TIMEOUT_MS: expected an integer >= 1, got 0'],
    [{ NATS_PUBLISH_BUFFER_MESSAGES: '0' }, 'environment variable NATS_PUBLISH_BUFFER_MESSAGES: expected an integer >= 1, got 0'],
    [{ NATS_PUBLISH_BUFFER_BYTES: '1k' }, 'environment variable NATS_PUBLISH_BUFFER_BYTES: expected an integer, got "1k"'],
    [{ NATS_PUBLISH_CONFIRM: 'ack' }, 'environment variable NATS_PUBLISH_CONFIRM: expected "buffer", "server", got "ack"'],
    [{ NATS_RECEIVE_BUFFER_BYTES: '100' }, 'environment variable NATS_RECEIVE_BUFFER_BYTES: expected an integer >= 1024, got 100'],
    [{ EVENT_BUS_STREAM: 'my.stream' }, 'environment variable EVENT_BUS_STREAM: a stream name may hold letters, digits'],
    [{ EVENT_BUS_STREAM_STORAGE: 'disk' }, 'environment variable EVENT_BUS_STREAM_STORAGE: expected "file", "memory", got "disk"'],
    [{ EVENT_BUS_IDEMPOTENCY: 'redis' }, 'environment variable EVENT_BUS_IDEMPOTENCY: expected "memory", "kv", "off", got "redis"'],
    [{ EVENT_BUS_SHUTDOWN_TIMEOUT_MS: 'soon' }, 'environment variable EVENT_BUS_SHUTDOWN_TIMEOUT_MS: expected an integer, got "soon"'],
    [{ EVENT_BUS_RETRY_ATTEMPTS: '0' }, 'environment variable EVENT_BUS_RETRY_ATTEMPTS: expected an integer >= 1, got 0'],
    [{ EVENT_BUS_HANDLER_TIMEOUT_MS: '0' }, 'environment variable EVENT_BUS_HANDLER_TIMEOUT_MS: expected an integer >= 1, got 0'],
    [{ EVENT_BUS_PUBLISH_TIMEOUT_MS: '120000' }, 'environment variable EVENT_BUS_PUBLISH_TIMEOUT_MS: must be below the duplicate window (120000 ms)'],
    [{ EVENT_BUS_PUBLISH_TIMEOUT_MS: '20000', EVENT_BUS_DUPLICATE_WINDOW_MS: '10000' }, 'environment variable EVENT_BUS_PUBLISH_TIMEOUT_MS: must be below the duplicate window (10000 ms): a publish retried past it would be stored twice'],
    [{ EVENT_BUS_MAX_PUBLISHES_IN_FLIGHT: '0' }, 'environment variable EVENT_BUS_MAX_PUBLISHES_IN_FLIGHT: expected an integer >= 1, got 0'],
    [{ EVENT_BUS_IDEMPOTENCY_MAX_ENTRIES: 'lots' }, 'environment variable EVENT_BUS_IDEMPOTENCY_MAX_ENTRIES: expected an integer, got "lots"'],
    [{ EVENT_BUS_RETRY_INITIAL_DELAY_MS: '500', EVENT_BUS_RETRY_MAX_DELAY_MS: '100' }, 'environment variable EVENT_BUS_RETRY_MAX_DELAY_MS: must not be below the initial delay (500 ms)'],
  ])('fails on %j, naming the variable', (env, message) => {
    expect(() => resolveAll({}, env)).toThrow(EventBusConfigError);
    expect(() => resolveAll({}, env)).toThrow(message);
  });

  it('names the option when the bad value comes from code', () => {
    expect(() => resolveAll({ subjectPrefix: 'a.>' }, {})).toThrow('option subjectPrefix: token ">"');
    expect(() => resolveAll({ nats: { servers: 'ftp://x' } }, {})).toThrow('option nats.servers: "ftp://x" is not a NATS server URL');
    expect(() => resolveAll({ nats: { tls: { keyFile: file } } }, {})).toThrow('option nats.tls.certFile or environment variable NATS_TLS_CERT_FILE: a client certificate needs both');
    expect(() => resolveAll({ retry: { attempts: 1.5 } }, {})).toThrow('option retry.attempts: expected an integer >= 1, got 1.5');
    expect(() => resolveAll({ source: 'billing service' }, {})).toThrow('option source: must be a URI-reference');
    expect(() => resolveAll({ source: '' }, {})).toThrow('option source: must be a URI-reference');
    expect(() => resolveAll({ cloudEvents: { mode: 'batch' as 'binary' } }, {})).toThrow('option cloudEvents.mode: expected "structured", "binary", got "batch"');
    expect(() => resolveAll({ jetstream: { duplicateWindowMs: 5_000, publishTimeoutMs: 5_000 } }, {})).toThrow('option jetstream.publishTimeoutMs: must be below the duplicate window (5000 ms)');
  });

  it('keeps the default publish timeout below a short duplicate window', () => {
    expect(resolveAll({ jetstream: { duplicateWindowMs: 10_000 } }, {}).jetstream.publishTimeoutMs).toBe(9_999);
  });

  it('takes TLS and credentials files that exist', () => {
    const options = resolveAll({}, { NATS_TLS_CA_FILE: file, NATS_TLS_CERT_FILE: file, NATS_TLS_KEY_FILE: file });
    expect(options.nats.tls).toEqual({ caFile: file, certFile: file, keyFile: file });
  });
});
