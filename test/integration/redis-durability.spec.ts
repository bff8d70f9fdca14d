import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import type { DeadLetter } from '../../lib/index.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { eventually } from '../support/instances.js';
import { RedisCluster } from '../support/redis-cluster.js';
import type { RedisServer, RedisServerOptions } from '../support/redis-server.js';
import { makeTlsFiles, type TlsFiles } from '../support/tls-certificates.js';
import { ids, idsOf as seenIds, recordsOf as seen, sorted } from '../support/records.js';

describe('Redis Streams: durable at-least-once delivery (instances as separate processes)', () => {
  let cluster: RedisCluster;
  let server: RedisServer;
  let recordDir: string;

  const start = (name: string, env: Record<string, string> = {}) => cluster.instance(name, { FIXTURE_RECORD_FILE: join(recordDir, `${name}.jsonl`), ...env });

  /** What an instance recorded, read from its file: complete even after a SIGKILL. */
  const fileRecords = (name: string): HandlerRecord[] =>
    readFileSync(join(recordDir, `${name}.jsonl`), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));

  async function startCluster(options: RedisServerOptions = {}, env: Record<string, string> = {}): Promise<void> {
    cluster = await RedisCluster.start(
      { EVENT_BUS_RETRY_INITIAL_DELAY_MS: '50', EVENT_BUS_RETRY_MAX_DELAY_MS: '400', EVENT_BUS_CLAIM_AFTER_MS: '1000', FIXTURE_DURABLE: 'true', ...env },
      options,
    );
    server = cluster.server;
  }

  /** A client of the test's own, as another producer would use it. */
  async function rawClient(url = server.url) {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  beforeEach(() => {
    recordDir = mkdtempSync(join(tmpdir(), 'records-'));
  });

  afterEach(async () => {
    await cluster?.dispose();
    rmSync(recordDir, { recursive: true, force: true });
  });

  describe('on one redis-server', () => {
    beforeEach(() => startCluster());

    it('delivers every acknowledged event after redis-server is killed with -9 and restarted on its append-only file', async () => {
      const [a, b] = [await start('a', { EVENT_BUS_PUBLISH_TIMEOUT_MS: '2000' }), await start('b')];
      const acked: string[] = [];
      const rejected: string[] = [];
      const publishing = (async () => {
        for (let i = 0; i < 300; i++) {
          const id = `restart-${i}`;
          // A publish that rejects was not confirmed: only acknowledged events are promised.
          await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: [id] }).then(
            () => acked.push(id),
            (error: Error) => rejected.push(error.message),
          );
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await eventually(() => expect(acked.length).toBeGreaterThan(50));
      await server.kill();
      await eventually(async () => expect((await b.status()).transport).toMatchObject({ connected: false, disconnects: 1 }));
      await new Promise((r) => setTimeout(r, 2_500)); // past the publish timeout: a's waiting publish is rejected
      await server.restart();
      await publishing;
      // In flight at the kill: rejected at once; sent while Redis was down: rejected at the publish timeout.
      expect(rejected.some((m) => m.includes('Redis did not confirm the publish to events.domain.OrderPlaced within 2000 ms (disconnected'))).toBe(true);
      await eventually(async () => {
        for (const instance of [a, b]) {
          expect((await instance.status()).transport).toMatchObject({ transport: 'redis', connected: true, reconnects: 1 });
          expect(sorted([...new Set(seenIds(await instance.records(), 'cqrs', 'restart'))])).toEqual(expect.arrayContaining(sorted(acked)));
        }
        const billed = new Set([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'restart')));
        expect(acked.every((id) => billed.has(id))).toBe(true);
      }, 60_000);
    }, 120_000);

    it('has the other members claim what a SIGKILLed member had not acked: nothing is lost', async () => {
      const members = await Promise.all(['a', 'b', 'c'].map((n) => start(n)));
      const orders = ids('killed', 3_000);
      const publishing = members[0].send({ cmd: 'publish', type: 'OrderPlaced', ids: orders, via: 'domain-all' });
      await eventually(() => expect(seen(fileRecords('c'), 'group:billing', 'killed').length).toBeGreaterThan(50));
      members[2].kill('SIGKILL');
      await publishing;
      await eventually(() => {
        const handled = new Set(['a', 'b', 'c'].flatMap((n) => seenIds(fileRecords(n), 'group:billing', 'killed')));
        expect(handled.size).toBe(orders.length);
      }, 60_000);
    }, 120_000);

    it('retries a failing handler with backoff, dead-letters one that always fails with its reason, and replays it to its group', async () => {
      const [a, b] = [await start('a'), await start('b')];
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['flaky-0', 'poison-0'] });
      await eventually(() => {
        const attempts = [a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'flaky')).map((r) => String(r.attempt));
        expect(sorted(attempts)).toEqual(['1', '2', '3']);
      });
      const letters = await eventually(async () => {
        const list = (await a.send({ cmd: 'deadLetters' })) as DeadLetter[];
        expect(list).toHaveLength(1);
        return list;
      });
      expect(letters[0]).toMatchObject({ type: 'OrderPlaced', group: 'flaky', subject: 'events.domain.OrderPlaced', attempts: 3 });
      expect(letters[0].error).toContain('poisoned on purpose');
      expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);

      await Promise.all([a, b].map((i) => i.send({ cmd: 'heal' })));
      expect(await b.send({ cmd: 'replay', id: letters[0].id })).toBe(1);
      await eventually(() => expect([a, b].flatMap((i) => seen(fileRecords(i.name), 'flaky', 'poison'))).toHaveLength(4));
      expect(await a.send({ cmd: 'deadLetters' })).toEqual([]);
      expect([a, b].flatMap((i) => seenIds(fileRecords(i.name), 'group:billing', 'poison'))).toEqual(['poison-0']);
    });

    it('handles a foreign producer\'s CloudEvent; dead-letters garbage at once, counted as decode errors, never retried', async () => {
      const a = await start('a');
      const raw = await rawClient();
      try {
        const foreign = JSON.stringify({
          specversion: '1.0', id: 'go-1', source: '/billing-go', type: 'OrderPlaced', time: '2026-11-24T10:00:00Z',
          datacontenttype: 'application/json', data: { orderId: 'foreign-0', total: 42 },
        });
        await raw.xAdd('DOMAIN_EVENTS', '*', { subject: 'events.domain.OrderPlaced', id: 'go-1', data: foreign });
        await raw.xAdd('DOMAIN_EVENTS', '*', { subject: 'events.domain.OrderPlaced', id: 'junk-1', data: 'not json' });
        await raw.xAdd('DOMAIN_EVENTS', '*', { body: 'no subject at all' });
      } finally {
        raw.destroy();
      }
      await eventually(async () => expect(seenIds(await a.records(), 'cqrs', 'foreign')).toEqual(['foreign-0']));
      // One letter per consumer group that got it (the named groups, and this instance's shared one).
      const letters = await eventually(async () => {
        const list = (await a.send({ cmd: 'deadLetters' })) as DeadLetter[];
        expect(list.filter((l) => l.id === 'junk-1').map((l) => l.group).sort()).toEqual(['audit', 'billing', 'flaky', 'hung', `instance-${(await a.status()).instanceId}`, 'slow', 'stuck']);
        return list;
      });
      const junk = letters.filter((l) => l.id === 'junk-1');
      expect(junk.every((l) => l.attempts === 1 && /^DecodeError: .*malformed JSON/.test(l.error))).toBe(true);
      // Counted once per subscription that decoded it: several share the instance's group.
      const decodeErrors = (await a.status()).stats.decodeErrors;
      expect(decodeErrors).toBeGreaterThan(junk.length);
      const unroutable = letters.filter((l) => l.subject === '');
      expect(unroutable.length).toBeGreaterThan(0);
      expect(unroutable.every((l) => l.error === 'Error: the entry has no "subject" field')).toBe(true);
      await new Promise((r) => setTimeout(r, 500)); // a retry would arrive now
      expect((await a.status()).stats.decodeErrors).toBe(decodeErrors);
    });

    it('handles an ordered group one event at a time in stream order, retries included', async () => {
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
      await new Promise((r) => setTimeout(r, 300)); // the group is created asynchronously
      await b.close();
      const waiting = ids('waiting', 20);
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: waiting });
      b = await start('b2');
      await b.send({ cmd: 'subscribe', name: 'offline', pattern: 'OrderPlaced', group: 'offline-workers' });
      await eventually(async () => expect(sorted(seenIds(await b.records(), 'dyn:offline', 'waiting'))).toEqual(sorted(waiting)));
    });

    it('refuses to start with a bad REDIS_URL, naming the variable', async () => {
      const { code, stderr } = await cluster.failToStart({ REDIS_URL: 'http://127.0.0.1:1' });
      expect(code).not.toBe(0);
      expect(stderr).toContain('environment variable REDIS_URL: "http://127.0.0.1:1" is not a Redis URL');
    });
  });

  describe('secured', () => {
    let tls: TlsFiles | undefined;
    afterEach(() => tls && rmSync(tls.dir, { recursive: true, force: true }));

    it('connects with a password in the URL, and refuses to start with a wrong one, saying why', async () => {
      await startCluster({ password: 's3cret/pw' });
      const [a, b] = [await start('a'), await start('b')];
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['auth-0'] });
      await eventually(async () => expect(seenIds(await b.records(), 'cqrs', 'auth')).toEqual(['auth-0']));
      const wrong = server.url.replace('s3cret%2Fpw', 'wrong');
      const { code, stderr } = await cluster.failToStart({ REDIS_URL: wrong, REDIS_CONNECT_TIMEOUT_MS: '1000' });
      expect(code).not.toBe(0);
      expect(stderr).toContain('cannot connect to Redis at redis://:***@127.0.0.1');
      expect(stderr).toMatch(/WRONGPASS|invalid password/);
    });

    it('connects over TLS (rediss://) with the CA file, with a password', async () => {
      tls = makeTlsFiles();
      await startCluster({ tls, password: 'pw' }, { REDIS_TLS_CA_FILE: tls.ca });
      const [a, b] = [await start('a'), await start('b')];
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['tls-0'] });
      await eventually(async () => expect(seenIds(await b.records(), 'group:billing', 'tls').length + seenIds(await a.records(), 'group:billing', 'tls').length).toBe(1));
      expect((await b.status()).transport).toMatchObject({ transport: 'redis', connected: true });
      const { stderr } = await cluster.failToStart({ REDIS_TLS_CA_FILE: '', REDIS_CONNECT_TIMEOUT_MS: '1000' });
      expect(stderr).toContain('cannot connect to Redis at rediss://');
    });
  });
});
