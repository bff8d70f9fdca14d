import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import { EventBusModule, EventOutbox, type EventBusModuleOptions } from '../lib/index.js';
import { PostgresServer, testPool } from '../test/support/postgres-server.js';
import { now, playerMoved } from './bench-event.js';

export interface OutboxFigures {
  /** Events per second the relay sent to JetStream (acknowledged) and deleted, from a backlog. */
  relayPerSecond: number;
  /** Mean time of a transaction of one plain insert, and of the same insert with one outbox row, in ms. */
  plainTxMs: number;
  withOutboxTxMs: number;
}

async function app(options: EventBusModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [EventBusModule.forRoot(options)] })
  class BenchModule {}
  return NestFactory.createApplicationContext(BenchModule, { logger: ['error'] });
}

/** Mean ms of `count` sequential transactions, each running `body` on one client. */
async function transactions(pool: pg.Pool, count: number, body: (client: pg.PoolClient, i: number) => Promise<unknown>): Promise<number> {
  const client = await pool.connect();
  try {
    const start = now();
    for (let i = 0; i < count; i++) {
      await client.query('BEGIN');
      await body(client, i);
      await client.query('COMMIT');
    }
    return (now() - start) / count;
  } finally {
    client.release();
  }
}

/**
 * The outbox on a PostgreSQL of its own with production durability (fsync, synchronous commit):
 * the relay draining a backlog to JetStream with default settings, and what one outbox row adds to a
 * transaction beside a plain insert of a row of similar size.
 */
export async function outboxScenario(natsUrl: string, backlog: number, transactionsPerRun: number): Promise<OutboxFigures> {
  const postgres = await PostgresServer.start({ durable: true });
  const url = postgres.createDatabase('bench');
  const pool = testPool(url);
  // Its own subjects: the JetStream scenario's stream on the same server holds the default ones.
  const transport = { transport: 'jetstream', subjectPrefix: 'outbox-bench', nats: { servers: natsUrl }, jetstream: { stream: 'OUTBOX_BENCH', idempotency: 'off' } } as const;
  try {
    const writer = await app({ ...transport, outbox: { url, migrate: true, relay: false } });
    const outbox = writer.get(EventOutbox);
    await pool.query('CREATE TABLE plain (id bigint PRIMARY KEY, body bytea NOT NULL)');

    const payload = Buffer.from(JSON.stringify(playerMoved(0)));
    let id = 0;
    const plain = (client: pg.PoolClient) => client.query('INSERT INTO plain VALUES ($1, $2)', [id++, payload]);
    const withOutbox = async (client: pg.PoolClient) => {
      await plain(client);
      await outbox.publish(playerMoved(id), client);
    };
    // Warmed up alike, then in alternating rounds, so that neither gains from going second.
    await transactions(pool, 200, plain);
    await transactions(pool, 200, withOutbox);
    const rounds = { plain: [] as number[], withOutbox: [] as number[] };
    for (let round = 0; round < 4; round++) {
      rounds.plain.push(await transactions(pool, transactionsPerRun / 4, plain));
      rounds.withOutbox.push(await transactions(pool, transactionsPerRun / 4, withOutbox));
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    await pool.query('DELETE FROM event_outbox');

    // The backlog, 1,000 events a transaction, then a relay started with default settings drains it.
    for (let written = 0; written < backlog; written += 1_000) {
      const client = await pool.connect();
      await client.query('BEGIN');
      await outbox.publishAll(Array.from({ length: Math.min(1_000, backlog - written) }, (_, i) => playerMoved(written + i)), client);
      await client.query('COMMIT');
      client.release();
    }
    await writer.close();
    const relay = await app({ ...transport, outbox: { url } });
    // The relay started as the application did: measured from what is left once it is up.
    const relayOutbox = relay.get(EventOutbox);
    const start = now();
    const left = (await relayOutbox.lag()).unsent;
    // A cheap check (the partial index), not a count that would compete with the relay for the CPU.
    const unsent = async () => (await pool.query('SELECT EXISTS (SELECT 1 FROM event_outbox WHERE sent_at IS NULL) AS any')).rows[0].any;
    while (await unsent()) await new Promise((r) => setTimeout(r, 20));
    const relayPerSecond = left / ((now() - start) / 1000);
    await relay.close();
    return { relayPerSecond, plainTxMs: mean(rounds.plain), withOutboxTxMs: mean(rounds.withOutbox) };
  } finally {
    await pool.end();
    await postgres.dispose();
  }
}
