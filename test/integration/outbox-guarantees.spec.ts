import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildProcessInstance, eventually } from '../support/instances.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { NatsServer } from '../support/nats-server.js';
import { PostgresServer } from '../support/postgres-server.js';
import { ids } from '../support/records.js';

/**
 * What the outbox promises, with real processes: a PostgreSQL and a nats-server of the test's own,
 * application instances as Node processes (test/fixtures/instance-main.ts with FIXTURE_OUTBOX), some
 * SIGKILLed. Consumers record every handler call to a file, which outlives their process.
 */
let postgres: PostgresServer;
let dir: string;
let database = 0;
const running: ChildProcessInstance[] = [];

beforeAll(async () => {
  postgres = await PostgresServer.start();
  dir = mkdtempSync(join(tmpdir(), 'outbox-records-'));
}, 60_000);

afterEach(async () => {
  await Promise.all(running.splice(0).map((i) => i.close()));
});

afterAll(async () => {
  await postgres?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

type Role = 'writer' | 'relay' | 'consumer';

/** One deployment: a database and a nats-server, and instances in roles (a consumer also relays unless told not to). */
class Deployment {
  private constructor(
    readonly nats: NatsServer,
    readonly db: string,
    private readonly env: Record<string, string>,
  ) {}

  static async start(transport: 'jetstream' | 'nats'): Promise<Deployment> {
    const nats = await NatsServer.start();
    const db = `outbox_${++database}`;
    const url = postgres.createDatabase(db);
    return new Deployment(nats, db, {
      EVENT_BUS_TRANSPORT: transport,
      NATS_URL: nats.url,
      NATS_RECONNECT_TIME_WAIT_MS: '100',
      // The handled-event record shared by the group's members: a redelivery to another member runs once too.
      EVENT_BUS_IDEMPOTENCY: 'kv',
      EVENT_BUS_OUTBOX_URL: url,
      EVENT_BUS_OUTBOX_MIGRATE: 'true',
      FIXTURE_OUTBOX: 'true',
    });
  }

  async instance(name: string, role: Role, env: Record<string, string> = {}): Promise<ChildProcessInstance> {
    const roleEnv: Record<Role, Record<string, string>> = {
      writer: { EVENT_BUS_OUTBOX_RELAY: 'false', FIXTURE_NO_HANDLERS: 'true' },
      relay: { EVENT_BUS_OUTBOX_RELAY: 'true', FIXTURE_NO_HANDLERS: 'true' },
      consumer: { FIXTURE_RECORD_FILE: this.recordFile(name) },
    };
    const instance = await ChildProcessInstance.start(name, { ...this.env, ...roleEnv[role], ...env });
    running.push(instance);
    return instance;
  }

  recordFile(name: string): string {
    return join(dir, `${this.db}-${name}.jsonl`);
  }

  /** Every handler call the named consumers recorded, in order, read from their files. */
  records(...names: string[]): HandlerRecord[] {
    return names.flatMap((name) => {
      const file = this.recordFile(name);
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as HandlerRecord);
    });
  }

  unsent(): number {
    return Number(postgres.psql(this.db, 'SELECT count(*) FROM event_outbox WHERE sent_at IS NULL').trim());
  }

  async dispose(): Promise<void> {
    await Promise.all(running.splice(0).map((i) => i.close()));
    await this.nats.dispose();
  }
}

/** How often each id was handled by `handler`, over all records. */
function counts(records: HandlerRecord[], handler: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const r of records) if (r.handler === handler) result.set(r.eventId, (result.get(r.eventId) ?? 0) + 1);
  return result;
}

function expectEachOnce(records: HandlerRecord[], handler: string, expected: string[]): void {
  const seen = counts(records, handler);
  const missing = expected.filter((id) => !seen.has(id));
  const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  expect({ handler, missing: missing.length, twice, unexpected: [...seen.keys()].filter((id) => !expected.includes(id)).length }).toEqual({
    handler,
    missing: 0,
    twice: [],
    unexpected: 0,
  });
}

describe('outbox on JetStream with groups', () => {
  let deployment: Deployment;
  beforeEach(async () => {
    deployment = await Deployment.start('jetstream');
  });
  afterEach(() => deployment?.dispose());

  it('delivers what was committed right before the writer was SIGKILLed, once per group', async () => {
    const writer = await deployment.instance('writer', 'writer');
    const orders = ids('killed-writer', 200);
    await expect(writer.send({ cmd: 'order', ids: orders, via: 'aggregate', killAfterCommit: true })).rejects.toThrow(/exited/);
    expect(deployment.unsent()).toBe(200);
    await deployment.instance('consumer', 'consumer');
    await eventually(() => expectEachOnce(deployment.records('consumer'), 'group:billing', orders), 30_000);
    await eventually(() => expectEachOnce(deployment.records('consumer'), 'group:audit', orders), 30_000);
    await eventually(() => expect(deployment.unsent()).toBe(0));
  });

  it('delivers every event once per group when a relay is SIGKILLed mid-batch (the second copy is deduplicated)', async () => {
    const consumers = [await deployment.instance('consumer-1', 'consumer', { EVENT_BUS_OUTBOX_RELAY: 'false' }), await deployment.instance('consumer-2', 'consumer', { EVENT_BUS_OUTBOX_RELAY: 'false' })];
    const writer = await deployment.instance('writer', 'writer');
    const orders = ids('killed-relay', 5_000);
    await writer.send({ cmd: 'order', ids: orders, via: 'cqrs', oneTransaction: true });
    const relay = await deployment.instance('relay-1', 'relay', { EVENT_BUS_OUTBOX_BATCH_SIZE: '20' });
    await eventually(() => expect(deployment.records('consumer-1', 'consumer-2').filter((r) => r.handler === 'group:billing').length).toBeGreaterThan(0), 30_000);
    relay.kill();
    const unsentAfterKill = deployment.unsent();
    expect(unsentAfterKill).toBeGreaterThan(0); // killed while there was work left
    await deployment.instance('relay-2', 'relay', { EVENT_BUS_OUTBOX_BATCH_SIZE: '50' });
    await eventually(() => expect(deployment.unsent()).toBe(0), 30_000);
    for (const group of ['group:billing', 'group:audit']) {
      await eventually(() => expect(counts(deployment.records('consumer-1', 'consumer-2'), group).size).toBe(orders.length), 60_000);
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const records = deployment.records('consumer-1', 'consumer-2');
    expectEachOnce(records, 'group:billing', orders);
    expectEachOnce(records, 'group:audit', orders);
    expect(consumers).toHaveLength(2);
  }, 120_000);

  it('holds committed events while NATS is down and delivers them once it is back', async () => {
    const consumer = await deployment.instance('consumer', 'consumer');
    await deployment.nats.stop();
    const orders = ids('nats-down', 50);
    await consumer.send({ cmd: 'order', ids: orders, via: 'domain' }); // commits: the database is up
    await eventually(async () => expect((await consumer.status()).outbox).toEqual(expect.objectContaining({ unsent: 50 })));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(deployment.records('consumer').filter((r) => r.handler === 'group:billing')).toEqual([]);
    // The health indicator reports the lag, and is down past the bound it is given.
    await eventually(async () =>
      expect(await consumer.send({ cmd: 'health', maxOutboxLagMs: 500 })).toEqual({
        eventBus: expect.objectContaining({ status: 'down', reason: expect.stringContaining("the outbox's oldest unsent event has waited"), outbox: expect.objectContaining({ unsent: 50 }) }),
      }),
    );
    await deployment.nats.restart();
    await eventually(() => expectEachOnce(deployment.records('consumer'), 'group:billing', orders), 30_000);
    // Sends that were in flight when the connection went are sent again: counted once they are acknowledged.
    await eventually(async () => expect((await consumer.status()).outbox!.relayed).toBeGreaterThanOrEqual(50), 20_000);
    await eventually(async () => expect(await consumer.send({ cmd: 'health', maxOutboxLagMs: 500 })).toEqual({ eventBus: expect.objectContaining({ status: 'up' }) }), 20_000);
  });
});

describe('outbox on core NATS with two relays', () => {
  let deployment: Deployment;
  beforeEach(async () => {
    deployment = await Deployment.start('nats');
  });
  afterEach(() => deployment?.dispose());

  // Core NATS has no deduplication: a row sent by both relays would be received twice.
  it('never sends a row twice and keeps each routing key in order across relays', async () => {
    await deployment.instance('consumer', 'consumer', { EVENT_BUS_OUTBOX_RELAY: 'false' });
    await deployment.instance('relay-1', 'relay', { EVENT_BUS_OUTBOX_BATCH_SIZE: '7' });
    await deployment.instance('relay-2', 'relay', { EVENT_BUS_OUTBOX_BATCH_SIZE: '7' });
    const writer = await deployment.instance('writer', 'writer');
    const rooms = ['room-a', 'room-b', 'room-c'];
    const players = ids('ordered', 600);
    // Two writers' worth of load at once, so that both relays have work at the same time.
    await Promise.all([
      writer.send({ cmd: 'order', ids: players.slice(0, 300), via: 'domain', rooms }),
      writer.send({ cmd: 'order', ids: players.slice(300), via: 'cqrs', rooms }),
    ]);
    await eventually(() => expect(counts(deployment.records('consumer'), 'enter:all').size).toBe(players.length), 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const records = deployment.records('consumer').filter((r) => r.handler === 'enter:all');
    expectEachOnce(records, 'enter:all', players);
    for (const half of [players.slice(0, 300), players.slice(300)]) {
      for (const [i, room] of rooms.entries()) {
        const written = half.filter((_, j) => j % rooms.length === i);
        const received = records.filter((r) => r.key === room && written.includes(r.eventId)).map((r) => r.eventId);
        expect(received).toEqual(written);
      }
    }
  }, 90_000);
});
