import { EventBusConfigError } from '../../lib/index.js';
import { redactedUrl, resolveRedisOptions } from '../../lib/transport/redis/redis-options.js';

describe('Redis options', () => {
  it('defaults to a local Redis, the DOMAIN_EVENTS stream, no trimming, a Redis-kept idempotency record', () => {
    expect(resolveRedisOptions({}, {})).toMatchObject({
      url: 'redis://127.0.0.1:6379',
      stream: 'DOMAIN_EVENTS',
      maxMessages: 0,
      maxAgeMs: 0,
      duplicateWindowMs: 120_000,
      publishTimeoutMs: 10_000,
      claimAfterMs: 10_000,
      idempotency: 'redis',
    });
  });

  it('reads the environment; code wins', () => {
    const env = { REDIS_URL: 'rediss://:pw@redis.internal:6380/2', EVENT_BUS_STREAM: 'ORDERS', EVENT_BUS_STREAM_MAX_AGE_MS: '86400000', EVENT_BUS_CLAIM_AFTER_MS: '3000' };
    expect(resolveRedisOptions({ stream: 'FROM_CODE' }, env)).toMatchObject({ url: env.REDIS_URL, stream: 'FROM_CODE', maxAgeMs: 86_400_000, claimAfterMs: 3_000 });
  });

  it.each([
    [{ REDIS_URL: 'http://host:1' }, 'environment variable REDIS_URL: "http://host:1" is not a Redis URL'],
    [{ EVENT_BUS_STREAM: 'has space' }, 'environment variable EVENT_BUS_STREAM: a stream key may hold'],
    [{ EVENT_BUS_IDEMPOTENCY: 'kv' }, 'environment variable EVENT_BUS_IDEMPOTENCY: expected "redis", "memory", "off", got "kv"'],
    [{ EVENT_BUS_CLAIM_AFTER_MS: '10' }, 'environment variable EVENT_BUS_CLAIM_AFTER_MS: expected an integer >= 500'],
    [{ REDIS_TLS_CA_FILE: '/no/such/file' }, 'environment variable REDIS_TLS_CA_FILE: cannot read file'],
    [{ REDIS_TLS_CA_FILE: '/etc/hostname' }, 'option redis.url or environment variable REDIS_URL: TLS files are given: use a rediss:// URL'],
  ])('fails naming the variable: %j', (env, message) => {
    expect(() => resolveRedisOptions({}, env)).toThrow(EventBusConfigError);
    expect(() => resolveRedisOptions({}, env)).toThrow(message);
  });

  it('never shows the password', () => {
    expect(redactedUrl('rediss://user:secret@host:6380/1')).toBe('rediss://user:***@host:6380/1');
  });
});
