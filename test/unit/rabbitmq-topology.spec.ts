import { resolveRabbitMqOptions } from '../../lib/transport/rabbitmq/rabbitmq-options.js';
import { bindingKey, exactMatchNeeded, RabbitMqTopology, retryTierMs } from '../../lib/transport/rabbitmq/rabbitmq-topology.js';
import { RecentPublishes } from '../../lib/transport/rabbitmq/recent-publishes.js';

describe('RabbitMQ topology', () => {
  const topology = new RabbitMqTopology('domain-events', 'quorum', 60_000);

  it('maps NATS patterns to binding keys, and says which need each subject checked', () => {
    expect(['a.*', 'a.>', '>', 'a.b'].map(bindingKey)).toEqual(['a.*', 'a.#', '#', 'a.b']);
    expect(['a.*', 'a.b', 'a.>', '>', 'a.#.c'].map(exactMatchNeeded)).toEqual([false, false, true, true, true]);
  });

  it('rounds retry delays to four steps per doubling, within 12.5%', () => {
    expect([0, 1, 20, 100, 200, 250, 1000, 30_000].map(retryTierMs)).toEqual([1, 1, 20, 96, 192, 256, 1024, 28672]);
    for (let delay = 2; delay < 60_000; delay = Math.ceil(delay * 1.07)) {
      expect(Math.abs(retryTierMs(delay) - delay) / delay).toBeLessThanOrEqual(0.125);
    }
  });

  it('names queues readably, hashes names past 255 bytes, and finds the group of a queue', () => {
    expect(topology.queueName('group', 'billing', 'events.domain.OrderPlaced')).toBe('domain-events.group.billing.events.domain.OrderPlaced');
    const long = topology.queueName('group', 'g', `events.${'x'.repeat(300)}`);
    expect(long).toMatch(/^domain-events\.group\.~[0-9a-f]{40}$/);
    expect(topology.queueName('group', 'g', `events.${'y'.repeat(300)}`)).not.toBe(long);
    expect(topology.scopeOfQueue('domain-events.group.billing.events.domain.OrderPlaced')).toBe('billing');
    expect(topology.scopeOfQueue(topology.instanceQueue('i42'))).toBe('instance-i42');
    expect(topology.scopeOfQueue('other.group.x')).toBe('');
  });

  it('gives ordered groups a single active consumer, and classic queues no delivery limit', () => {
    expect(topology.groupQueueArguments(true)).toMatchObject({ 'x-queue-type': 'quorum', 'x-delivery-limit': 20, 'x-single-active-consumer': true });
    expect(new RabbitMqTopology('e', 'classic', 1_000).groupQueueArguments(false)).toEqual({ 'x-queue-type': 'classic' });
  });
});

describe('RabbitMQ options', () => {
  it('defaults, and names what is wrong', () => {
    expect(resolveRabbitMqOptions({}, {}, 'i1')).toMatchObject({ url: 'amqp://guest:guest@127.0.0.1:5672', server: 'amqp://127.0.0.1:5672 vhost /', exchange: 'domain-events', queueType: 'quorum', name: 'i1' });
    expect(resolveRabbitMqOptions({}, { RABBITMQ_URL: 'amqps://u:p@broker:5671/billing%2Fprod' }, 'i1').server).toBe('amqps://broker:5671 vhost billing/prod');
    expect(() => resolveRabbitMqOptions({}, { RABBITMQ_URL: 'nats://u:secret@x' }, 'i1')).toThrow('environment variable RABBITMQ_URL: "nats://…@x" is not an AMQP URL');
    expect(() => resolveRabbitMqOptions({ exchange: 'amq.topic' }, {}, 'i1')).toThrow('option rabbitmq.exchange: names starting with "amq." are reserved by RabbitMQ');
    expect(() => resolveRabbitMqOptions({}, { RABBITMQ_RECONNECT_DELAY_MS: '5000', RABBITMQ_RECONNECT_MAX_DELAY_MS: '100' }, 'i1')).toThrow(
      'environment variable RABBITMQ_RECONNECT_MAX_DELAY_MS: expected an integer >= 5000, got 100',
    );
    expect(() => resolveRabbitMqOptions({}, { EVENT_BUS_IDEMPOTENCY: 'kv' }, 'i1')).toThrow('environment variable EVENT_BUS_IDEMPOTENCY: expected "memory", "off", got "kv"');
    expect(() => resolveRabbitMqOptions({ tls: { certFile: '/etc/hostname' } }, {}, 'i1')).toThrow('a client certificate needs both a cert file and a key file');
    expect(resolveRabbitMqOptions({}, { RABBITMQ_ARCHIVE_MAX_AGE_MS: '86400000' }, 'i1').archiveMaxAgeMs).toBe(86_400_000);
    expect(() => resolveRabbitMqOptions({}, { RABBITMQ_ARCHIVE_MAX_AGE_MS: '-1' }, 'i1')).toThrow('environment variable RABBITMQ_ARCHIVE_MAX_AGE_MS: expected an integer >= 0, got -1');
  });
});

describe('RabbitMQ duplicate window', () => {
  it('returns the publish of an id within the window, forgets one that failed, and one past the window', async () => {
    const recent = new RecentPublishes(50);
    const first = Promise.resolve();
    recent.remember('a', first);
    expect(recent.find('a')).toBe(first);
    const failed = Promise.reject(new Error('nack'));
    failed.catch(() => undefined);
    recent.remember('b', failed);
    recent.failed('b', failed);
    expect(recent.find('b')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 60));
    expect(recent.find('a')).toBeUndefined();
    expect(new RecentPublishes(0).find('x')).toBeUndefined();
  });
});
