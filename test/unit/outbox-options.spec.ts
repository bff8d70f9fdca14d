import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DomainEventBus, EventBusModule, EventOutbox, MemoryBroker, OutboxNotConfiguredError, OutboxTable } from '../../lib/index.js';
import { resolveOutboxOptions } from '../../lib/outbox/outbox-options.js';

const URL = 'postgres://app@db.internal:5432/shop';

describe('outbox options', () => {
  it('is off without an outbox section and without EVENT_BUS_OUTBOX_URL', () => {
    expect(resolveOutboxOptions(undefined, {})).toBeUndefined();
  });

  it('is on with EVENT_BUS_OUTBOX_URL alone, with the defaults', () => {
    expect(resolveOutboxOptions(undefined, { EVENT_BUS_OUTBOX_URL: URL })).toEqual({
      url: URL,
      pool: undefined,
      schema: 'public',
      table: 'event_outbox',
      migrate: false,
      outside: 'direct',
      relay: true,
      batchSize: 500,
      pollIntervalMs: 1_000,
      retentionMs: 0,
    });
  });

  it('takes code over the environment', () => {
    const env = { EVENT_BUS_OUTBOX_URL: URL, EVENT_BUS_OUTBOX_TABLE: 'from_env', EVENT_BUS_OUTBOX_MIGRATE: 'true', EVENT_BUS_OUTBOX_RELAY: 'off' };
    expect(resolveOutboxOptions({ table: 'from_code', outside: 'reject' }, env)).toEqual(
      expect.objectContaining({ table: 'from_code', migrate: true, relay: false, outside: 'reject' }),
    );
  });

  it.each([
    [{}, {}, /option outbox\.url or environment variable EVENT_BUS_OUTBOX_URL: the outbox needs a PostgreSQL URL or an existing pg Pool/],
    [{}, { EVENT_BUS_OUTBOX_URL: 'mysql://x' }, /environment variable EVENT_BUS_OUTBOX_URL: expected a postgres:\/\//],
    [{ table: 'drop table;' }, { EVENT_BUS_OUTBOX_URL: URL }, /option outbox\.table: expected a PostgreSQL identifier/],
    [{}, { EVENT_BUS_OUTBOX_URL: URL, EVENT_BUS_OUTBOX_SCHEMA: '"x"' }, /environment variable EVENT_BUS_OUTBOX_SCHEMA: expected a PostgreSQL identifier/],
    [{}, { EVENT_BUS_OUTBOX_URL: URL, EVENT_BUS_OUTBOX_OUTSIDE: 'ignore' }, /EVENT_BUS_OUTBOX_OUTSIDE: expected "direct", "reject"/],
    [{ batchSize: 0 }, { EVENT_BUS_OUTBOX_URL: URL }, /option outbox\.batchSize: expected an integer >= 1/],
    [{}, { EVENT_BUS_OUTBOX_URL: URL, EVENT_BUS_OUTBOX_POLL_INTERVAL_MS: '5' }, /EVENT_BUS_OUTBOX_POLL_INTERVAL_MS: expected an integer >= 10/],
    [{ pool: {} as never }, {}, /option outbox\.pool: expected a pg Pool/],
  ])('fails naming the setting: %j %j', (options, env, message) => {
    expect(() => resolveOutboxOptions(options, env)).toThrow(message);
  });

  it('quotes the table everywhere and names the LISTEN channel after it', () => {
    const table = new OutboxTable({ schema: 'shop', table: 'outbox' });
    expect(table.channel).toBe('shop.outbox');
    expect(table.migrationSql()).toContain('CREATE SCHEMA IF NOT EXISTS "shop";');
    expect(table.migrationSql()).toContain(`PERFORM pg_notify('shop.outbox', '')`);
    expect(new OutboxTable({ schema: 'public', table: 'event_outbox' }).migrationSql()).not.toContain('CREATE SCHEMA');
  });
});

describe('EventBusModule without an outbox', () => {
  it('provides an inert EventOutbox and no outbox status', async () => {
    @Module({ imports: [EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      await expect(app.get(EventOutbox).publish({}, {})).rejects.toThrow(OutboxNotConfiguredError);
      expect(app.get(DomainEventBus).status().outbox).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});
