import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { Kysely, PostgresDialect } from 'kysely';
import {
  DomainEvent,
  DomainEventBus,
  EventBusModule,
  EventOutbox,
  MemoryBroker,
  NotATransactionError,
  OnDomainEvent,
  ValueObject,
  type EventContext,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { PostgresServer, testPool } from '../support/postgres-server.js';

@ValueObject('OutboxMoney')
class Money {
  constructor(
    readonly cents: bigint,
    readonly currency: string,
  ) {}
}

@DomainEvent('OutboxOrderPlaced', { key: (e: OutboxOrderPlaced) => e.customer })
class OutboxOrderPlaced {
  constructor(
    readonly orderId: string,
    readonly customer: string,
    readonly total: Money,
    readonly at: Date,
  ) {}
}

const received: Array<{ event: OutboxOrderPlaced; context: EventContext }> = [];

/** What a handler of `followed-…` orders writes to the outbox while handling them. */
@DomainEvent('OutboxOrderFollowed')
class OutboxOrderFollowed {
  constructor(readonly orderId: string) {}
}
const followed: EventContext[] = [];

@Injectable()
class OrderHandlers {
  constructor(
    private readonly outbox: EventOutbox,
    private readonly bus: DomainEventBus,
  ) {}

  @OnDomainEvent(OutboxOrderPlaced)
  async on(event: OutboxOrderPlaced, context: EventContext) {
    received.push({ event, context });
    if (!event.orderId.startsWith('followed-') || !this.bus.instanceId.startsWith('writer')) return;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await this.outbox.publish(new OutboxOrderFollowed(event.orderId), client);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  @OnDomainEvent(OutboxOrderFollowed)
  onFollowed(_event: OutboxOrderFollowed, context: EventContext) {
    followed.push(context);
  }
}

const order = (id: string, customer = 'c-1') => new OutboxOrderPlaced(id, customer, new Money(1999n, 'EUR'), new Date('2026-12-01T10:00:00.000Z'));
const receivedIds = () => received.map((r) => r.event.orderId);

let server: PostgresServer;
let url: string;
let app: INestApplicationContext;
let outbox: EventOutbox;
let pool: pg.Pool;

beforeAll(async () => {
  server = await PostgresServer.start();
  url = server.createDatabase('explicit');
  @Module({
    imports: [CqrsModule.forRoot(), EventBusModule.forRoot({ instanceId: 'writer', memory: { broker: new MemoryBroker() }, outbox: { url, migrate: true, pollIntervalMs: 200 } })],
    providers: [OrderHandlers],
  })
  class AppModule {}
  app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
  outbox = app.get(EventOutbox);
  pool = testPool(url);
  await pool.query('CREATE TABLE orders (id text PRIMARY KEY, customer text NOT NULL)');
}, 60_000);

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await server?.dispose();
});

beforeEach(() => {
  received.length = 0;
  followed.length = 0;
});

async function unsentRows(): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM event_outbox');
  return rows[0].n;
}

describe('EventOutbox.publish(event, tx) with a pg client', () => {
  it('sends a committed event once, rebuilt, with the id it was written with', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES ($1, $2)', ['pg-1', 'c-1']);
      await outbox.publish(order('pg-1'), client, { id: 'order-pg-1-placed' });
      await new Promise((r) => setTimeout(r, 300));
      expect(received).toEqual([]); // not before commit
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await eventually(() => expect(receivedIds()).toEqual(['pg-1']));
    const [{ event, context }] = received;
    expect(event).toBeInstanceOf(OutboxOrderPlaced);
    expect(event.total).toBeInstanceOf(Money);
    expect(event.total.cents).toBe(1999n);
    expect(event.at).toEqual(new Date('2026-12-01T10:00:00.000Z'));
    expect(context.id).toBe('order-pg-1-placed');
    expect(context.key).toBe('c-1');
    expect(context.origin).toBe('writer/outbox');
    await eventually(async () => expect(await unsentRows()).toBe(0));
  });

  it('writes what a handler publishes as caused by its event, continuing its flow', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await outbox.publish(order('followed-1'), client, { id: 'order-followed-1', correlationId: 'checkout-7' });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await eventually(() => expect(followed).toHaveLength(1));
    expect(received[0].context).toMatchObject({ id: 'order-followed-1', correlationId: 'checkout-7', causationId: undefined });
    expect(followed[0]).toMatchObject({ correlationId: 'checkout-7', causationId: 'order-followed-1' });
  });

  it('never sends the event of a rolled-back transaction', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await outbox.publishAll([order('rb-1'), order('rb-2')], client);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await outbox.publish(order('after-rb'), client);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await eventually(() => expect(receivedIds()).toEqual(['after-rb']));
    await new Promise((r) => setTimeout(r, 500));
    expect(receivedIds()).toEqual(['after-rb']);
  });

  it('rejects what is not a transaction, and events it cannot write, writing nothing', async () => {
    await expect(outbox.publish(order('x'), pool)).rejects.toThrow(NotATransactionError);
    await expect(outbox.publish(order('x'), {} as object)).rejects.toThrow(/not a transaction/);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await expect(outbox.publishAll([order('ok'), new (class NotAnEvent {})()], client)).rejects.toThrow(/@DomainEvent/);
      await expect(outbox.publish(order('bad-key', 'has space'), client)).rejects.toThrow(/routing key/);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await unsentRows()).toBe(0);
  });
});

describe('EventOutbox.publish(event, tx) with TypeORM', () => {
  let dataSource: DataSource;
  beforeAll(async () => {
    dataSource = await new DataSource({ type: 'postgres', url }).initialize();
  });
  afterAll(() => dataSource?.destroy());

  it('writes in the EntityManager of a transaction: committed sent, rolled back not', async () => {
    await dataSource.transaction(async (manager) => {
      await manager.query('INSERT INTO orders VALUES ($1, $2)', ['orm-1', 'c-2']);
      await outbox.publish(order('orm-1', 'c-2'), manager);
    });
    await expect(
      dataSource.transaction(async (manager) => {
        await outbox.publish(order('orm-rolled-back'), manager);
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    await eventually(() => expect(receivedIds()).toEqual(['orm-1']));
    await expect(outbox.publish(order('x'), dataSource.manager)).rejects.toThrow(/not in a transaction/);
  });

  it('writes in a QueryRunner after startTransaction()', async () => {
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    await expect(outbox.publish(order('x'), runner)).rejects.toThrow(/startTransaction/);
    await runner.startTransaction();
    await outbox.publish(order('runner-1'), runner);
    await runner.commitTransaction();
    await runner.release();
    await eventually(() => expect(receivedIds()).toEqual(['runner-1']));
  });
});

describe('EventOutbox.publish(event, tx) with Kysely', () => {
  let db: Kysely<{ orders: { id: string; customer: string } }>;
  beforeAll(() => {
    db = new Kysely({ dialect: new PostgresDialect({ pool: testPool(url) }) });
  });
  afterAll(() => db?.destroy());

  it('writes in a Kysely transaction: committed sent, rolled back not', async () => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: 'ky-1', customer: 'c-3' }).execute();
      await outbox.publishAll([order('ky-1', 'c-3'), order('ky-2', 'c-3')], trx);
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await outbox.publish(order('ky-rolled-back'), trx);
        throw new Error('nope');
      }),
    ).rejects.toThrow('nope');
    await eventually(() => expect(receivedIds()).toEqual(['ky-1', 'ky-2']));
    await expect(outbox.publish(order('x'), db)).rejects.toThrow(/not a transaction/);
  });
});

describe('outbox status', () => {
  it('reports the backlog in DomainEventBus.status() and EventOutbox.lag()', async () => {
    // Handlers may run before the relay has committed the deletion of what it sent.
    await eventually(async () => expect(await outbox.lag()).toEqual({ unsent: 0, oldestUnsentMs: 0 }));
    await eventually(() => expect(app.get(DomainEventBus).status().outbox).toEqual(expect.objectContaining({ unsent: 0, relayErrors: 0 })), 5_000);
    expect(app.get(DomainEventBus).status().outbox!.relayed).toBeGreaterThan(0);
  });
});

describe('an outbox on a pg Pool of the application, keeping sent rows', () => {
  let poolApp: INestApplicationContext;
  let poolOutbox: EventOutbox;
  const appPool = () => testPool(url);
  let given: pg.Pool;

  beforeAll(async () => {
    given = appPool();
    @Module({
      imports: [
        EventBusModule.forRoot({
          instanceId: 'pool-writer',
          memory: { broker: new MemoryBroker() },
          // A poll interval longer than the test: only NOTIFY can wake the relay in time.
          outbox: { pool: given, table: 'kept_outbox', migrate: true, retentionMs: 1_500, pollIntervalMs: 600_000 },
        }),
      ],
      providers: [OrderHandlers],
    })
    class PoolAppModule {}
    poolApp = await NestFactory.createApplicationContext(PoolAppModule, { logger: ['error'] });
    poolOutbox = poolApp.get(EventOutbox);
  }, 60_000);

  afterAll(async () => {
    await poolApp?.close();
    await given?.end(); // still the application's: the outbox does not end it
  });

  it('wakes on NOTIFY, marks the row sent, and deletes it once the retention has passed', async () => {
    const client = await given.connect();
    try {
      await client.query('BEGIN');
      await poolOutbox.publish(order('kept-1'), client);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await eventually(() => expect(receivedIds()).toEqual(['kept-1']), 5_000);
    const { rows } = await given.query('SELECT sent_at FROM kept_outbox');
    expect(rows).toHaveLength(1);
    expect(rows[0].sent_at).toBeInstanceOf(Date);
    expect(await poolOutbox.lag()).toEqual({ unsent: 0, oldestUnsentMs: 0 });
    // The sweep runs from the relay's loop, which the next notification wakes.
    await new Promise((r) => setTimeout(r, 1_600));
    const client2 = await given.connect();
    await client2.query('BEGIN');
    await poolOutbox.publish(order('kept-2'), client2);
    await client2.query('COMMIT');
    client2.release();
    await eventually(async () => expect((await given.query('SELECT id FROM kept_outbox')).rows.map((r) => r.id).length).toBe(1), 5_000);
  });
});
