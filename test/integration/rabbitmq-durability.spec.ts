import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeadLetter } from '../../lib/index.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { eventually, type ChildProcessInstance } from '../support/instances.js';
import { RabbitMqCluster } from '../support/rabbitmq-cluster.js';
import type { RabbitMqServer } from '../support/rabbitmq-server.js';
import { ids, idsOf as seenIds, recordsOf as seen, sorted } from '../support/records.js';
import { makeTlsFiles, type TlsFiles } from '../support/tls-certificates.js';

// The client as a foreign producer would use it (the package under test loads it itself).
const { Connection } = createRequire(import.meta.url)('rabbitmq-client') as typeof import('rabbitmq-client');

describe('RabbitMQ: durable at-least-once delivery (a node of its own, instances as separate processes)', () => {
  let tls: TlsFiles;
  let cluster: RabbitMqCluster;
  let server: RabbitMqServer;
  let recordDir: string;
  /** The instances of the running test: closed after it, while the node goes on. */
  let started: ChildProcessInstance[] = [];

  const start = async (name: string, env: Record<string, string> = {}) => {
    const instance = await cluster.instance(name, { FIXTURE_RECORD_FILE: join(recordDir, `${name}.jsonl`), ...env });
    started.push(instance);
    return instance;
  };

  /** What an instance recorded, read from its file: complete even after a SIGKILL. */
  const fileRecords = (name: string): HandlerRecord[] =>
    readFileSync(join(recordDir, `${name}.jsonl`), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));

  /** Publishes raw messages to the exchange, as another service would; resolves once confirmed. */
  async function foreignPublish(messages: { body: Buffer | string | object; contentType?: string; id?: string }[]): Promise<void> {
    const rabbit = new Connection(server.url);
    rabbit.on('error', () => undefined);
    const publisher = rabbit.createPublisher({ confirm: true });
    try {
      for (const m of messages) {
        await publisher.send({ exchange: 'domain-events', routingKey: 'events.domain.OrderPlaced', messageId: m.id, contentType: m.contentType, durable: true }, m.body);
      }
    } finally {
      await publisher.close();
      await rabbit.close();
    }
  }

  beforeAll(async () => {
    tls = makeTlsFiles();
    cluster = await RabbitMqCluster.start(
      { EVENT_BUS_RETRY_INITIAL_DELAY_MS: '50', EVENT_BUS_RETRY_MAX_DELAY_MS: '400', FIXTURE_DURABLE: 'true' },
      { tls: { caFile: tls.ca, certFile: tls.serverCert, keyFile: tls.serverKey } },
    );
    server = cluster.server;
  }, 120_000);

  afterAll(async () => {
    await cluster?.dispose();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  }, 60_000);

  beforeEach(() => {
    recordDir = mkdtempSync(join(tmpdir(), 'records-'));
  });

  afterEach(async () => {
    await Promise.all(started.map((i) => i.close()));
    started = [];
    rmSync(recordDir, { recursive: true, force: true });
  });

  it('delivers every confirmed event after the broker is killed with -9 and restarted; publishes meanwhile reject, none is dropped silently', async () => {
    const outage = { RABBITMQ_PUBLISH_TIMEOUT_MS: '3000' };
    const [a, b] = [await start('a', outage), await start('b', outage)];
    const acked: string[] = [];
    const rejections: string[] = [];
    let stop = false;
    const publishing = (async () => {
      for (let i = 0; !stop && i < 5_000; i++) {
        const id = `restart-${i}`;
        // A publish that rejects was not confirmed: only confirmed events are promised.
        await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: [id] }).then(
          () => acked.push(id),
          (error: Error) => rejections.push(error.message),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await eventually(() => expect(acked.length).toBeGreaterThan(50));
    await server.kill();
    await eventually(() => expect(rejections.length).toBeGreaterThan(0), 30_000);
    await server.restart();
    await eventually(async () => {
      for (const instance of [a, b]) expect((await instance.status()).transport).toMatchObject({ connected: true, reconnects: 1, disconnects: 1 });
    }, 60_000);
    const before = acked.length;
    await eventually(() => expect(acked.length).toBeGreaterThan(before + 20), 30_000); // publishing goes on
    stop = true;
    await publishing;
    expect(rejections[0]).toMatch(/cannot publish to events\.domain\.OrderPlaced: RabbitMQ did not confirm it/);
    await eventually(async () => {
      for (const instance of [a, b]) {
        const handled = new Set(seenIds(await instance.records(), 'cqrs', 'restart'));
        expect(acked.filter((id) => !handled.has(id))).toEqual([]);
      }
      const billed = new Set([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'restart')));
      expect(acked.filter((id) => !billed.has(id))).toEqual([]);
    }, 60_000);
  }, 240_000);

  it('gives what a SIGKILLed member had not acked to the others: nothing is lost', async () => {
    // Every event goes to a dozen queues here (the fixture's groups and each instance's own): a burst takes a while to confirm.
    const members = await Promise.all(['a', 'b', 'c'].map((n) => start(n, { RABBITMQ_PUBLISH_TIMEOUT_MS: '60000' })));
    const orders = ids('killed', 3_000);
    const publishing = members[0].send({ cmd: 'publish', type: 'OrderPlaced', ids: orders, via: 'domain-all' });
    await eventually(() => expect(seen(fileRecords('c'), 'group:billing', 'killed').length).toBeGreaterThan(100));
    members[2].kill('SIGKILL');
    await publishing;
    await eventually(() => {
      const handled = new Set(['a', 'b', 'c'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'killed')));
      expect(handled.size).toBe(orders.length);
    }, 60_000);
  }, 120_000);

  it('retries a failing handler with backoff, dead-letters one that always fails with its reason, and replays it to that group only', async () => {
    const [a, b] = [await start('a'), await start('b')];
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['flaky-0', 'poison-0'] });
    await eventually(() => {
      const attempts = [a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'flaky')).map((r) => r.attempt);
      expect(attempts.sort()).toEqual([1, 2, 3]);
    });
    const letters = await eventually(async () => {
      const list = ((await a.send({ cmd: 'deadLetters' })) as DeadLetter[]).filter((l) => l.group === 'flaky');
      expect(list).toHaveLength(1);
      return list;
    });
    expect(letters[0]).toMatchObject({ type: 'OrderPlaced', group: 'flaky', subject: 'events.domain.OrderPlaced', attempts: 3 });
    expect(letters[0].error).toBe('Error: poisoned on purpose');
    expect([a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'poison'))).toHaveLength(3);
    // Other groups were not disturbed by the poison: billing handled it once.
    expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);

    await Promise.all([a, b].map((i) => i.send({ cmd: 'heal' })));
    expect(await b.send({ cmd: 'replay', id: letters[0].id })).toBe(1);
    await eventually(() => expect([a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'poison'))).toHaveLength(4));
    expect(((await a.send({ cmd: 'deadLetters' })) as DeadLetter[]).filter((l) => l.group === 'flaky')).toEqual([]);
    expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);
  });

  it('handles a foreign CloudEvent; counts, dead-letters and never retries garbage; survives hostile bodies', async () => {
    const a = await start('a');
    const cloudEvent = (id: string, orderId: string) => ({ specversion: '1.0', id, type: 'OrderPlaced', source: '/billing-go', data: { orderId, total: 42 } });
    await foreignPublish([
      { body: Buffer.from(JSON.stringify(cloudEvent('go-1', 'foreign-0'))), contentType: 'application/cloudevents+json', id: 'go-1' },
      { body: cloudEvent('go-2', 'foreign-1'), id: 'go-2' }, // the client sends an object as application/json
      { body: 'not json', id: 'junk-1' }, // and a string as text/plain
      { body: Buffer.from('{"specversion":"1.0","id":"x3","type":"OrderPlaced","data":{"orderId":"evil-1"},"datatypes":"{\\"/__proto__/polluted\\":\\"Date\\"}"}'), id: 'junk-2' },
    ]);
    await eventually(async () => expect(sorted(seenIds(await a.records(), 'cqrs', 'foreign'))).toEqual(['foreign-0', 'foreign-1']));
    const letters = await eventually(async () => {
      const list = ((await a.send({ cmd: 'deadLetters' })) as DeadLetter[]).filter((l) => l.id.startsWith('junk-'));
      expect(new Set(list.map((l) => l.id))).toEqual(new Set(['junk-1', 'junk-2']));
      expect(list.filter((l) => l.id === 'junk-1').map((l) => l.group)).toEqual(expect.arrayContaining(['billing', 'audit']));
      return list;
    });
    // One dead letter per queue that got it, each after one attempt: decode errors are never retried.
    expect(letters.every((l) => l.attempts === 1 && l.error.startsWith('DecodeError'))).toBe(true);
    expect((await a.status()).stats.decodeErrors).toBe(letters.length);
    expect(await a.send({ cmd: 'polluted' })).toBe(false);
  });

  it('refuses a group that asks to start from history without the archive, saying what RabbitMQ cannot do', async () => {
    const a = await start('a');
    await expect(a.send({ cmd: 'subscribe', name: 'late', pattern: 'OrderPlaced', group: 'late-all', start: 'all' })).rejects.toThrow(
      "cannot subscribe to events.domain.OrderPlaced with start 'all': a RabbitMQ queue receives only the events routed to it once it exists",
    );
  });

  it('keeps a group\'s events while every member is down, and delivers them when one comes back', async () => {
    const a = await start('a');
    let b = await start('b');
    await b.send({ cmd: 'subscribe', name: 'offline', pattern: 'OrderPlaced', group: 'offline-workers' });
    await new Promise((r) => setTimeout(r, 300)); // the queue is declared asynchronously
    await b.close();
    const waiting = ids('waiting', 20);
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: waiting });
    b = await start('b2');
    await b.send({ cmd: 'subscribe', name: 'offline', pattern: 'OrderPlaced', group: 'offline-workers' });
    await eventually(async () => expect(sorted(seenIds(await b.records(), 'dyn:offline', 'waiting'))).toEqual(sorted(waiting)));
  });

  it('authenticates with a user and password, over TLS too; refuses a wrong password at startup, naming the broker', async () => {
    await server.ctl('add_user', 'billing', 's3cret');
    await server.ctl('set_permissions', '-p', '/', 'billing', '.*', '.*', '.*');
    const plain = { RABBITMQ_URL: `amqp://billing:s3cret@127.0.0.1:${server.port}` };
    const secure = { RABBITMQ_URL: `amqps://billing:s3cret@127.0.0.1:${server.tlsPort}`, RABBITMQ_TLS_CA_FILE: tls.ca };
    const [a, b] = [await start('a', plain), await start('b', secure)];
    expect((await b.status()).transport).toMatchObject({ connected: true, server: `amqps://127.0.0.1:${server.tlsPort} vhost /` });
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['auth-0'] });
    await eventually(async () => expect(seenIds(await b.records(), 'cqrs', 'auth')).toEqual(['auth-0']));

    const wrong = await cluster.failToStart({ RABBITMQ_URL: `amqp://billing:wrong@127.0.0.1:${server.port}`, RABBITMQ_CONNECT_TIMEOUT_MS: '3000' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain(`cannot connect to RabbitMQ at amqp://127.0.0.1:${server.port} vhost /`);
    expect(wrong.stderr).toContain('ACCESS_REFUSED');
    expect(wrong.stderr).not.toContain('wrong@');
  });
});
