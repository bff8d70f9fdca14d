import { ChildProcessInstance, eventually } from '../support/instances.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { PostgresServer } from '../support/postgres-server.js';

/**
 * Publishing inside `@Transactional()` (nestjs-cls, TypeORM adapter) writes to the outbox with no change to the
 * publishing code (test/fixtures/outbox-orders.ts). Instances run as processes: nestjs-cls is CommonJS and
 * requires the ESM-only Nest 12, which Jest's module loader cannot do (Node itself can).
 */
let server: PostgresServer;
let url: string;
const running: ChildProcessInstance[] = [];

beforeAll(async () => {
  server = await PostgresServer.start();
  url = server.createDatabase('cls');
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((i) => i.close()));
  await server?.dispose();
});

async function instance(name: string, env: Record<string, string> = {}): Promise<ChildProcessInstance> {
  const started = await ChildProcessInstance.start(name, {
    EVENT_BUS_TRANSPORT: 'memory',
    EVENT_BUS_OUTBOX_URL: url,
    EVENT_BUS_OUTBOX_MIGRATE: 'true',
    FIXTURE_OUTBOX: 'true',
    ...env,
  });
  running.push(started);
  return started;
}

const handled = (records: HandlerRecord[], id: string) => records.filter((r) => r.eventId === id).map((r) => r.handler).sort();
const orderRows = (id: string) => Number(server.psql('cls', `SELECT count(*) FROM orders WHERE id = '${id}'`).trim());
/** The handlers an OrderPlaced runs on one instance: two groups, the CQRS handler, and two patterns. */
const ALL_HANDLERS = ['cqrs', 'group:audit', 'group:billing', 'pattern:*', 'pattern:>'];

describe('inside @Transactional() (outside: "direct")', () => {
  let app: ChildProcessInstance;
  beforeAll(async () => {
    app = await instance('cls-direct');
  }, 60_000);

  it.each(['domain', 'cqrs', 'aggregate'] as const)('%s: the event is written in the transaction and handled once, after commit', async (via) => {
    const id = `commit-${via}`;
    const seenBeforeCommit = await app.send({ cmd: 'order', ids: [id], via, peekMs: 300 });
    expect(seenBeforeCommit).toEqual([]); // neither the bus's nor CQRS's handlers ran inside the transaction
    await eventually(async () => expect(handled(await app.records(), id)).toEqual(ALL_HANDLERS));
    await new Promise((r) => setTimeout(r, 300));
    const records = (await app.records()).filter((r) => r.eventId === id);
    expect(records).toHaveLength(ALL_HANDLERS.length);
    expect(records.find((r) => r.handler === 'group:billing')).toEqual(expect.objectContaining({ local: false, intact: true, origin: expect.stringMatching(/\/outbox$/) }));
    expect(orderRows(id)).toBe(1);
  });

  it.each(['domain', 'cqrs', 'aggregate'] as const)('%s: a rolled-back transaction produces no event', async (via) => {
    await expect(app.send({ cmd: 'order', ids: [`rollback-${via}`], via, fail: true })).rejects.toThrow('business rule failed');
    await app.send({ cmd: 'order', ids: [`after-rollback-${via}`], via });
    await eventually(async () => expect(handled(await app.records(), `after-rollback-${via}`)).toEqual(ALL_HANDLERS));
    expect(handled(await app.records(), `rollback-${via}`)).toEqual([]);
    expect(orderRows(`rollback-${via}`)).toBe(0);
  });

  it.each(['cqrs', 'aggregate'] as const)('%s: an event that cannot be encoded rolls the transaction back and fails the method', async (via) => {
    await expect(app.send({ cmd: 'order', ids: [`unencodable-${via}`], via, unencodable: true })).rejects.toThrow(/not a registered value object/);
    expect(orderRows(`unencodable-${via}`)).toBe(0);
  });

  it('a savepoint (Propagation.Nested) that rolls back takes its events with it', async () => {
    await app.send({ cmd: 'order', ids: ['nested'], via: 'cqrs', savepoint: true });
    await eventually(async () => expect(handled(await app.records(), 'nested-outer')).toEqual(ALL_HANDLERS));
    await new Promise((r) => setTimeout(r, 300));
    expect(handled(await app.records(), 'nested-inner')).toEqual([]);
  });

  it('outside a transaction, publishes directly, as without the outbox', async () => {
    await app.send({ cmd: 'order', ids: ['outside'], via: 'domain', outside: true });
    await eventually(async () => expect(handled(await app.records(), 'outside')).toEqual(ALL_HANDLERS));
    expect((await app.records()).find((r) => r.eventId === 'outside' && r.handler === 'group:billing')?.origin).toBe((await app.status()).instanceId);
  });

  it('EventOutbox.publish(event, manager) in a TypeORM transaction', async () => {
    await app.send({ cmd: 'order', ids: ['explicit'], via: 'explicit' });
    await eventually(async () => expect(handled(await app.records(), 'explicit')).toEqual(ALL_HANDLERS));
  });
});

describe('outside: "reject"', () => {
  it('rejects a publish outside a transaction, and writes those inside one', async () => {
    // A table of its own: on the memory transport, a relay delivers to its own process only.
    const app = await instance('cls-reject', { EVENT_BUS_OUTBOX_OUTSIDE: 'reject', EVENT_BUS_OUTBOX_TABLE: 'reject_outbox' });
    await expect(app.send({ cmd: 'order', ids: ['rejected'], via: 'domain', outside: true })).rejects.toThrow(/OutsideTransactionError|outside a transaction/);
    await app.send({ cmd: 'order', ids: ['inside-reject'], via: 'domain' });
    await eventually(async () => expect(handled(await app.records(), 'inside-reject')).toEqual(ALL_HANDLERS));
    expect(handled(await app.records(), 'rejected')).toEqual([]);
  });
});

describe('startup', () => {
  it('fails naming what to do when the table is missing and migration is off', async () => {
    const { code, stderr } = await ChildProcessInstance.failToStart({
      EVENT_BUS_OUTBOX_URL: url,
      EVENT_BUS_OUTBOX_TABLE: 'missing_outbox',
    });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/outbox table public\.missing_outbox does not exist: set outbox\.migrate \(EVENT_BUS_OUTBOX_MIGRATE=true\)/);
  });

  it('fails naming the variable for a bad setting', async () => {
    const { stderr } = await ChildProcessInstance.failToStart({ EVENT_BUS_OUTBOX_URL: url, EVENT_BUS_OUTBOX_BATCH_SIZE: 'many' });
    expect(stderr).toMatch(/environment variable EVENT_BUS_OUTBOX_BATCH_SIZE: expected an integer/);
  });
});
