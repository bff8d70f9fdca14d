import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { DeadLetter, JetStreamTransportStatus } from '../../lib/index.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { eventually } from '../support/instances.js';
import { NatsCluster } from '../support/nats-cluster.js';
import type { NatsServer } from '../support/nats-server.js';
import { ids, idsOf as seenIds, recordsOf as seen, sorted } from '../support/records.js';
import { orderPlaced, sdkOrders, toNatsHeaders } from '../support/cloudevents.js';

describe('JetStream: durable at-least-once delivery (instances as separate processes)', () => {
  let cluster: NatsCluster;
  let server: NatsServer;
  let recordDir: string;

  const start = (name: string, env: Record<string, string> = {}) =>
    cluster.instance(name, { FIXTURE_RECORD_FILE: join(recordDir, `${name}.jsonl`), ...env });

  /** What an instance recorded, read from its file: complete even after a SIGKILL. */
  const fileRecords = (name: string): HandlerRecord[] =>
    readFileSync(join(recordDir, `${name}.jsonl`), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));

  beforeEach(async () => {
    cluster = await NatsCluster.start('jetstream', {
      EVENT_BUS_RETRY_INITIAL_DELAY_MS: '50',
      EVENT_BUS_RETRY_MAX_DELAY_MS: '400',
      FIXTURE_DURABLE: 'true',
    });
    server = cluster.server;
    recordDir = mkdtempSync(join(tmpdir(), 'records-'));
  });

  afterEach(async () => {
    await cluster.dispose();
    rmSync(recordDir, { recursive: true, force: true });
  });

  it('handles each of 10,000 events exactly once across a group of three', async () => {
    const cluster = await Promise.all(['a', 'b', 'c'].map((n) => start(n)));
    const orders = ids('bulk', 10_000);
    await cluster[0].send({ cmd: 'publish', type: 'OrderPlaced', ids: orders, via: 'domain-all' });
    await eventually(async () => {
      const handled = (await Promise.all(cluster.map((i) => i.records()))).flatMap((r) => seenIds(r, 'group:billing', 'bulk'));
      expect(handled.length).toBe(orders.length);
    }, 60_000);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive now
    const handled = (await Promise.all(cluster.map((i) => i.records()))).flatMap((r) => seenIds(r, 'group:billing', 'bulk'));
    expect(sorted(handled)).toEqual(sorted(orders));
  }, 120_000);

  it('redelivers to the others what a SIGKILLed member had not acked: nothing is lost', async () => {
    // A short ack wait, so that what the killed member held comes back soon.
    const cluster = await Promise.all(['a', 'b', 'c'].map((n) => start(n, { EVENT_BUS_ACK_WAIT_MS: '5000' })));
    const orders = ids('killed', 10_000);
    const publishing = cluster[0].send({ cmd: 'publish', type: 'OrderPlaced', ids: orders, via: 'domain-all' });
    await eventually(() => expect(seen(fileRecords('c'), 'group:billing', 'killed').length).toBeGreaterThan(100));
    cluster[2].kill('SIGKILL');
    await publishing;
    await eventually(() => {
      const handled = new Set(['a', 'b', 'c'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'killed')));
      expect(handled.size).toBe(orders.length);
    }, 60_000);
  }, 120_000);

  it('delivers every acknowledged event after nats-server is killed with -9 and restarted on its store', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const acked: string[] = [];
    const publishing = (async () => {
      for (let i = 0; i < 400; i++) {
        const id = `restart-${i}`;
        // A publish that rejects was not stored: only acknowledged events are promised.
        await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: [id] }).then(() => acked.push(id), () => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await eventually(() => expect(acked.length).toBeGreaterThan(50));
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await publishing;
    expect(acked.length).toBeGreaterThan(50);
    await eventually(async () => {
      for (const instance of [a, b]) {
        const records = await instance.records();
        expect(sorted([...new Set(seenIds(records, 'cqrs', 'restart'))])).toEqual(expect.arrayContaining(sorted(acked)));
      }
      const billed = new Set([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'restart')));
      expect(acked.every((id) => billed.has(id))).toBe(true);
    }, 60_000);
  }, 120_000);

  it('retries a failing handler with backoff, dead-letters one that always fails with its reason, and replays it', async () => {
    const [a, b] = [await start('a'), await start('b')];
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['flaky-0', 'poison-0'] });
    const flaky = await eventually(async () => {
      const attempts = [a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'flaky')).map((r) => r.attempt);
      expect(sorted(attempts.map(String))).toEqual(['1', '2', '3']);
      return attempts;
    });
    expect(flaky).toHaveLength(3);

    const letters = await eventually(async () => {
      const list = (await a.send({ cmd: 'deadLetters' })) as DeadLetter[];
      expect(list).toHaveLength(1);
      return list;
    });
    expect(letters[0]).toMatchObject({ type: 'OrderPlaced', group: 'flaky', subject: 'events.domain.OrderPlaced', attempts: 3 });
    expect(letters[0].error).toContain('poisoned on purpose');
    expect([a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'poison'))).toHaveLength(3);
    // Other groups were not disturbed by the poison: billing handled it once.
    expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);

    await Promise.all([a, b].map((i) => i.send({ cmd: 'heal' })));
    expect(await b.send({ cmd: 'replay', id: letters[0].id })).toBe(1);
    await eventually(() => expect([a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'poison'))).toHaveLength(4));
    expect(await a.send({ cmd: 'deadLetters' })).toEqual([]);
    // The replay went to the flaky group only.
    expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);
  });

  it('dead-letters a message that cannot be decoded at once, without retrying it', async () => {
    const a = await start('a');
    const raw = await connect({ servers: server.url });
    try {
      await jetstream(raw).publish('events.domain.OrderPlaced', 'not json', { msgID: 'junk-1' });
    } finally {
      await raw.close();
    }
    const letters = await eventually(async () => {
      const list = (await a.send({ cmd: 'deadLetters' })) as DeadLetter[];
      expect(list.length).toBeGreaterThan(0);
      return list;
    });
    // One dead letter per consumer that got it (each group, and this instance's own), each after one attempt.
    expect(letters.every((l) => l.id === 'junk-1' && l.attempts === 1 && l.error.startsWith('DecodeError: the body is malformed JSON'))).toBe(true);
    expect(letters.map((l) => l.group)).toEqual(expect.arrayContaining(['billing', 'audit']));
    expect((await a.status()).stats.decodeErrors).toBe(letters.length);
  });

  it('dead-letters at once, with their ids and in one clean log line, forged types and broken binary messages', async () => {
    const a = await start('a', { FIXTURE_LOG: 'true', NO_COLOR: '1' });
    const raw = await connect({ servers: server.url });
    try {
      const js = jetstream(raw);
      const forged = '{"specversion":"1.0","id":"f1","source":"/mallory","type":"GameTick","data":{"tickId":"evil-forged","at":"2026-11-24T10:00:00Z"},"datatypes":"{\\"/at\\":\\"Date\\"}"}';
      await js.publish('events.domain.OrderPlaced', forged, { msgID: 'forged-1' });
      await js.publish('events.domain.OrderPlaced', orderPlaced('evil-injected', { type: 'OrderPlaced\n[Nest] 1  - FORGED \u001b[31mred' }), { msgID: 'injected-1' });
      // Binary mode without a source, published without Nats-Msg-Id: its dead letter still has its id.
      raw.publish('events.domain.OrderPlaced', '{"orderId":"evil-binary","total":42}', {
        headers: toNatsHeaders({ 'ce-specversion': '1.0', 'ce-id': 'broken-binary-1', 'ce-type': 'OrderPlaced' }),
      });
      await raw.flush();
      const letters = await eventually(async () => {
        const list = (await a.send({ cmd: 'deadLetters' })) as DeadLetter[];
        for (const id of ['forged-1', 'injected-1', 'broken-binary-1']) expect(list.filter((l) => l.id === id).length).toBeGreaterThan(0);
        return list;
      });
      expect(letters.every((l) => l.attempts === 1 && l.error.startsWith('DecodeError'))).toBe(true);
      expect(letters.find((l) => l.id === 'forged-1')!.error).toContain('does not match the subject');
      expect(letters.find((l) => l.id === 'broken-binary-1')).toMatchObject({ type: 'OrderPlaced', subject: 'events.domain.OrderPlaced' });
      expect((await a.records()).filter((r) => r.eventId.startsWith('evil'))).toEqual([]);
      const output = a.output();
      expect(output).not.toContain('\u001b');
      expect(output.split('\n').filter((line) => line.startsWith('[Nest] 1  - FORGED'))).toEqual([]);
      expect(output).not.toContain('will be redelivered');
    } finally {
      await raw.close();
    }
  });

  it('handles binary-mode CloudEvents and the CloudEvents SDK\'s events in a group, and acks them', async () => {
    const a = await start('a');
    const raw = await connect({ servers: server.url });
    try {
      const js = jetstream(raw);
      const binary = { 'ce-specversion': '1.0', 'ce-id': 'jsbin-1', 'ce-type': 'OrderPlaced', 'ce-source': '/billing-go', 'ce-datacontenttype': 'application/json' };
      await js.publish('events.domain.OrderPlaced', '{"orderId":"jsbin-0","total":42}', { headers: toNatsHeaders(binary), msgID: 'jsbin-1' });
      for (const { headers, body } of sdkOrders('sdk')) await js.publish('events.domain.OrderPlaced', body, { headers: toNatsHeaders(headers) });
      await eventually(() => {
        const billed = seen(fileRecords('a'), 'group:billing', 'jsbin').concat(seen(fileRecords('a'), 'group:billing', 'sdk'));
        expect(billed.map((r) => r.eventId).sort()).toEqual(['jsbin-0', 'sdk-base64', 'sdk-base64-binary', 'sdk-json', 'sdk-json-binary']);
        expect(billed.every((r) => r.intact)).toBe(true);
      });
      expect(await a.send({ cmd: 'deadLetters' })).toEqual([]);
      expect((await a.status()).stats.decodeErrors).toBe(0);
    } finally {
      await raw.close();
    }
  });

  it('stores and handles once an event published twice with the same id', async () => {
    const [a, b] = [await start('a'), await start('b')];
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['dup-0'], eventId: 'order-42-placed' });
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['dup-0'], eventId: 'order-42-placed' });
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['after-0'] });
    await eventually(async () => expect(seenIds(await b.records(), 'cqrs', 'after')).toEqual(['after-0']));
    for (const instance of [a, b]) expect(seenIds(await instance.records(), 'pattern:*', 'dup')).toEqual(['dup-0']);
    expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'dup'))).toEqual(['dup-0']);
  });

  it('keeps long handlers\' events with working(), lets them finish and acks them on a clean stop: no redelivery', async () => {
    const shortAckWait = { EVENT_BUS_ACK_WAIT_MS: '2000' };
    const [a, b] = [await start('a', shortAckWait), await start('b', shortAckWait)];
    const slow = ids('slow', 6);
    await b.send({ cmd: 'publish', type: 'OrderPlaced', ids: slow });
    await eventually(() => expect(seen(fileRecords('a'), 'slow:start', 'slow').length).toBeGreaterThan(0));
    await a.close();
    const startedOnA = seenIds(fileRecords('a'), 'slow:start', 'slow');
    expect(sorted(seenIds(fileRecords('a'), 'slow:done', 'slow'))).toEqual(sorted(startedOnA));
    await eventually(() => expect(seenIds(fileRecords('a'), 'slow:done', 'slow').length + seenIds(fileRecords('b'), 'slow:done', 'slow').length).toBe(6));
    await new Promise((r) => setTimeout(r, 3_000)); // past the ack wait: an unacked event would be redelivered to b
    const done = ['a', 'b'].flatMap((n) => seenIds(fileRecords(n), 'slow:done', 'slow'));
    expect(sorted(done)).toEqual(sorted(slow));
  });

  it('starts a new group from the beginning of the stream, from a time, or with new events only', async () => {
    const a = await start('a');
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['history-0', 'history-1'] });
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['history-2'] });
    await a.send({ cmd: 'subscribe', name: 'all', pattern: 'OrderPlaced', group: 'late-all', start: 'all' });
    await a.send({ cmd: 'subscribe', name: 'since', pattern: 'OrderPlaced', group: 'late-since', start: between });
    await a.send({ cmd: 'subscribe', name: 'new', pattern: 'OrderPlaced', group: 'late-new' });
    await new Promise((r) => setTimeout(r, 300)); // the consumers are created asynchronously
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['history-3'] });
    await eventually(async () => {
      const records = await a.records();
      expect(sorted(seenIds(records, 'dyn:all', 'history'))).toEqual(ids('history', 4));
      expect(sorted(seenIds(records, 'dyn:since', 'history'))).toEqual(['history-2', 'history-3']);
      expect(seenIds(records, 'dyn:new', 'history')).toEqual(['history-3']);
    });
  });

  it('handles an ordered group one event at a time in stream order, retries included', async () => {
    // Both members append to one file, so its lines are in the order the group handled the events.
    const shared = { FIXTURE_RECORD_FILE: join(recordDir, 'shared.jsonl') };
    const [a] = [await start('a', shared), await start('b', shared)];
    const players = [...ids('ord', 20).slice(0, 10), 'ord-x-fails-once', ...ids('ord', 20).slice(10)];
    await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: players, room: 'room-9', via: 'domain-all' });
    await eventually(() => expect(seen(fileRecords('shared'), 'ordered', 'ord')).toHaveLength(players.length));
    expect(seenIds(fileRecords('shared'), 'ordered', 'ord')).toEqual(players);
  });

  it('keeps a group\'s events while every member is down, and delivers them when one comes back', async () => {
    const a = await start('a');
    let b = await start('b');
    await b.send({ cmd: 'subscribe', name: 'offline', pattern: 'OrderPlaced', group: 'offline-workers' });
    await new Promise((r) => setTimeout(r, 300)); // the consumer is created asynchronously
    await b.close();
    const waiting = ids('waiting', 20);
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: waiting });
    b = await start('b2');
    await b.send({ cmd: 'subscribe', name: 'offline', pattern: 'OrderPlaced', group: 'offline-workers' });
    await eventually(async () => expect(sorted(seenIds(await b.records(), 'dyn:offline', 'waiting'))).toEqual(sorted(waiting)));
  });

  it('records handled ids in NATS KV, so a redelivery to another member is not handled twice', async () => {
    const env = { EVENT_BUS_IDEMPOTENCY: 'kv', EVENT_BUS_DUPLICATE_WINDOW_MS: '1000' };
    const members = { a: await start('a', env), b: await start('b', env) };
    await members.a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['kv-0'], eventId: 'kv-event-1' });
    const handledBy = await eventually(() => {
      const by = (['a', 'b'] as const).filter((n) => seenIds(fileRecords(n), 'group:billing', 'kv').length > 0);
      expect(by).toHaveLength(1);
      return by[0];
    });
    // The member that handled it goes away; past the duplicate window the stream stores the id again,
    // and the other member gets it: only the cluster-wide inbox knows it was handled.
    await members[handledBy].close();
    const other = handledBy === 'a' ? members.b : members.a;
    await new Promise((r) => setTimeout(r, 1_200));
    await other.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['kv-0'], eventId: 'kv-event-1' });
    await other.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['kvafter-0'] });
    await eventually(() => expect(seenIds(fileRecords(other.name), 'group:billing', 'kvafter')).toEqual(['kvafter-0']));
    expect(['a', 'b'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'kv'))).toEqual(['kv-0']);
    expect(seenIds(await other.records(), 'cqrs', 'kv')).toEqual(['kv-0', 'kv-0']); // it was delivered twice indeed
  });

  it('bounds a hung handler at shutdown: the process exits by itself, and another member gets its event at once', async () => {
    // A long ack wait and handler timeout: only the hand-back at shutdown can bring the event to b soon.
    const env = { EVENT_BUS_ACK_WAIT_MS: '60000', EVENT_BUS_SHUTDOWN_TIMEOUT_MS: '500', FIXTURE_EXIT: 'natural' };
    const [a, b] = [await start('a', env), await start('b', env)];
    // One event at a time until one is stuck on a (the group's members share the events).
    let sent = 0;
    await eventually(async () => {
      await b.send({ cmd: 'publish', type: 'OrderPlaced', ids: [`stuck-${sent++}`] });
      await new Promise((r) => setTimeout(r, 100));
      expect(seenIds(fileRecords('a'), 'stuck', 'stuck').length).toBeGreaterThan(0);
    });
    const stuckOnA = await eventually(() => {
      const held = seenIds(fileRecords('a'), 'stuck', 'stuck');
      expect(held.length + seenIds(fileRecords('b'), 'stuck', 'stuck').length).toBe(sent);
      return held;
    });
    await a.close(); // resolves once the process exited: nothing of the bus keeps it alive
    await eventually(() => {
      const takenOver = seen(fileRecords('b'), 'stuck', 'stuck').filter((r) => r.attempt === 2).map((r) => r.eventId);
      expect(sorted(takenOver)).toEqual(sorted(stuckOnA));
    }, 20_000);
  });

  it('fails a hung handler\'s attempt at its timeout: the group goes on, the event is retried, then dead-lettered', async () => {
    // As many hung handlers as the consumer has deliveries in flight: without a timeout, nothing else would run.
    const a = await start('a', { EVENT_BUS_MAX_IN_FLIGHT: '4' });
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('hang', 4) });
    await eventually(() => expect(seen(fileRecords('a'), 'hung', 'hang').length).toBe(4));
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('unhung', 10) });
    await eventually(() => expect(sorted(seenIds(fileRecords('a'), 'hung', 'unhung'))).toEqual(sorted(ids('unhung', 10))), 30_000);
    const letters = await eventually(async () => {
      const list = ((await a.send({ cmd: 'deadLetters' })) as DeadLetter[]).filter((l) => l.group === 'hung');
      expect(list).toHaveLength(4);
      return list;
    }, 30_000);
    expect(letters.every((l) => l.attempts === 2 && l.error.startsWith('HandlerTimeoutError: handlers did not settle within 1500 ms'))).toBe(true);
    expect(seen(fileRecords('a'), 'hung', 'hang').map((r) => r.attempt).sort()).toEqual(['1', '1', '1', '1', '2', '2', '2', '2'].map(Number));
    // The status shows what timed out, and the handlers that still run although their events went on.
    const { delivery } = (await a.status()).transport as JetStreamTransportStatus;
    expect(delivery!.timedOut).toBe(8);
    expect(delivery!.slow.filter((h) => h.abandoned && h.consumer.startsWith('hung__'))).toHaveLength(8);
  });

  it('does not let one hung handler block an ordered group for good', async () => {
    const a = await start('a');
    const players = [...ids('ord', 5), 'ord-x-hangs', ...ids('ord', 10).slice(5)];
    await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: players, room: 'room-9', via: 'domain-all' });
    await eventually(() => expect(seenIds(fileRecords('a'), 'ordered', 'ord')).toEqual(ids('ord', 10)), 30_000);
    const letters = ((await a.send({ cmd: 'deadLetters' })) as DeadLetter[]).filter((l) => l.group === 'ordered');
    expect(letters).toMatchObject([{ type: 'PlayerEnteredRoom', attempts: 2 }]);
    expect(letters[0]!.error).toContain('HandlerTimeoutError');
  });

  it('creates a group\'s consumer again when it is deleted under its running members, and goes on delivering', async () => {
    const [a, b] = [await start('a'), await start('b')];
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['before-0'] });
    await eventually(() => expect(['a', 'b'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'before'))).toEqual(['before-0']));
    const raw = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(raw);
      for await (const consumer of jsm.consumers.list('DOMAIN_EVENTS')) {
        if (!consumer.name.startsWith('billing__')) continue;
        // nats-server 2.9 may answer "unlinkat …: directory not empty" when a delivery is being written to the
        // consumer's store as it deletes it: asked again until it is gone.
        await eventually(async () => {
          const deleted = await jsm.consumers.delete('DOMAIN_EVENTS', consumer.name).catch((error: Error) => {
            if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) return true;
            throw error;
          });
          expect(deleted).toBe(true);
        });
      }
    } finally {
      await raw.close();
    }
    await b.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('recreated', 5) });
    await eventually(() => {
      const billed = ['a', 'b'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'recreated'));
      expect(sorted(billed)).toEqual(ids('recreated', 5));
    }, 30_000);
  });

  it('refuses to start on a stream that conflicts with its configuration, naming the difference', async () => {
    const a = await start('a'); // creates DOMAIN_EVENTS with file storage
    await a.close();
    const { code, stderr } = await cluster.failToStart({ EVENT_BUS_STREAM_STORAGE: 'memory' });
    expect(code).not.toBe(0);
    expect(stderr).toContain('stream DOMAIN_EVENTS exists and differs in ways this module will not change: storage is file, configured memory');
  });
});
