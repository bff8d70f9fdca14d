import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { EVENT_BUS_MODULE_OPTIONS, EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from '../constants.js';
import { createTransport } from '../create-transport.js';
import { DomainEventBus, type OutboxStatus, type PublishOptions } from '../domain-event-bus.js';
import type { EventBusModuleOptions } from '../event-bus-options.js';
import type { DomainEventRegistration } from '../registry/event-registry.js';
import type { ResolvedEventBusOptions } from '../resolve-options.js';
import type { EventTransport } from '../transport/event-transport.js';
import { ClsTransactions } from './cls-transactions.js';
import { resolveOutboxOptions, type ResolvedOutboxOptions } from './outbox-options.js';
import { OutboxRelay } from './outbox-relay.js';
import { OutboxTable } from './outbox-table.js';
import { statementRunner, type OutboxTransaction } from './outbox-transaction.js';
import { OutboxWriter } from './outbox-writer.js';
import { loadPg, type OutboxPool } from './pg-types.js';

/** The outbox's backlog: committed events not yet sent, and the age of the oldest. */
export interface OutboxLag {
  readonly unsent: number;
  readonly oldestUnsentMs: number;
}

export class OutboxNotConfiguredError extends Error {
  override readonly name = 'OutboxNotConfiguredError';
}

/** DI token of the resolved outbox settings (undefined when the outbox is not configured). */
export const OUTBOX_OPTIONS = Symbol('OUTBOX_OPTIONS');

export const outboxOptionsProvider = {
  provide: OUTBOX_OPTIONS,
  useFactory: (options: EventBusModuleOptions) => resolveOutboxOptions(options.outbox),
  inject: [EVENT_BUS_MODULE_OPTIONS],
};

/**
 * The transactional outbox on PostgreSQL: events written in the caller's transaction, sent by the
 * relay once it commits. `publish(event, tx)` writes explicitly; with `@nestjs-cls/transactional`,
 * every publish inside `@Transactional()` is written implicitly. Inert when not configured.
 */
@Injectable()
export class EventOutbox implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('EventOutbox');
  private pool?: OutboxPool;
  private table?: OutboxTable;
  private writer?: OutboxWriter;
  private cls?: ClsTransactions;
  private relay?: OutboxRelay;
  private relayTransport?: EventTransport;

  constructor(
    @Inject(OUTBOX_OPTIONS) private readonly settings: ResolvedOutboxOptions | undefined,
    @Inject(RESOLVED_EVENT_BUS_OPTIONS) private readonly busOptions: ResolvedEventBusOptions,
    @Inject(EVENT_BUS_MODULE_OPTIONS) private readonly moduleOptions: EventBusModuleOptions,
    @Inject(EVENT_TRANSPORT) private readonly busTransport: EventTransport,
    private readonly bus: DomainEventBus,
    private readonly moduleRef: ModuleRef,
  ) {}

  async onModuleInit(): Promise<void> {
    const settings = this.settings;
    if (!settings) return;
    const table = new OutboxTable(settings);
    this.pool = settings.pool ?? (await this.openPool(settings.url!));
    if (settings.migrate) await table.migrate(this.pool);
    else await table.check(this.pool);
    this.table = table;
    this.writer = new OutboxWriter(this.busOptions, table);
    this.cls = await ClsTransactions.find(this.moduleRef, this.writer, settings.outside);
    if (!this.cls && settings.outside === 'reject') {
      throw new Error('outbox.outside "reject" (EVENT_BUS_OUTBOX_OUTSIDE) needs @nestjs-cls/transactional with its ClsPluginTransactional registered');
    }
    this.bus.setTransactionalCapture(this);
    if (settings.relay) {
      // A connection of its own: the relay's batches do not queue behind the application's publishes, and
      // on the memory transport this instance's own handlers receive what its relay sends.
      const shared = typeof this.busOptions.transport === 'object';
      const transport = shared ? this.busTransport : createTransport(this.busOptions, this.moduleOptions);
      if (!shared) {
        await transport.connect();
        this.relayTransport = transport;
      }
      this.relay = new OutboxRelay(this.pool, table, settings, transport, this.logger, () => this.bus.status().ready);
    }
    this.logger.log(`outbox ${table.channel}${this.cls ? ' (with @Transactional())' : ''}${settings.relay ? ', relay on' : ', relay off'}`);
  }

  onApplicationBootstrap(): void {
    this.relay?.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.relay?.stop();
    await this.relayTransport?.close();
    if (this.pool && !this.settings?.pool) await this.pool.end();
  }

  /**
   * Writes the event in the caller's transaction: a `pg` client after BEGIN, a TypeORM EntityManager
   * or QueryRunner in a transaction, or a Kysely Transaction. The relay sends it once that commits;
   * a rollback discards it. Rejects for an unregistered event, data that cannot be encoded, an invalid
   * key, or something that is not a transaction.
   */
  publish(event: object, tx: OutboxTransaction, options?: PublishOptions): Promise<void> {
    return this.write([event], tx, options);
  }

  /** Writes the events, in order, with one statement; nothing when one of them cannot be written. */
  publishAll(events: readonly object[], tx: OutboxTransaction, options?: Omit<PublishOptions, 'id'>): Promise<void> {
    return this.write(events, tx, options);
  }

  /** The backlog now, from the database (for a health indicator). */
  async lag(): Promise<OutboxLag> {
    const { pool, table } = this.configured();
    const { rows } = await pool.query<{ unsent: string; oldest_ms: string }>(table.lag);
    return { unsent: Number(rows[0].unsent), oldestUnsentMs: Number(rows[0].oldest_ms) };
  }

  /** @internal The bus asks, for each publish, whether a transaction takes it. */
  capture(event: object, registration: DomainEventRegistration, options: PublishOptions | undefined): Promise<void> | undefined {
    return this.cls?.capture(event, registration, options);
  }

  /** The backlog as last measured by this instance's relay, with its counters. */
  status(): OutboxStatus {
    return this.relay?.status() ?? { unsent: 0, oldestUnsentMs: 0, relayed: 0, relayErrors: 0 };
  }

  private async write(events: readonly object[], tx: OutboxTransaction, options: PublishOptions | undefined): Promise<void> {
    const { writer } = this.configured();
    const run = statementRunner(tx);
    await writer.insert(run, events.map((event) => writer.row(event, options)));
  }

  private configured(): { pool: OutboxPool; table: OutboxTable; writer: OutboxWriter } {
    if (!this.pool || !this.table || !this.writer) {
      throw new OutboxNotConfiguredError('the outbox is not configured: set EVENT_BUS_OUTBOX_URL or EventBusModule.forRoot({ outbox: { url } })');
    }
    return { pool: this.pool, table: this.table, writer: this.writer };
  }

  private async openPool(url: string): Promise<OutboxPool> {
    const { Pool } = await loadPg();
    const pool = new Pool({ connectionString: url, application_name: `event-outbox ${this.busOptions.instanceId}` });
    // An idle client losing its server must not crash the process; the next query reports it.
    pool.on('error', (error) => this.logger.warn(`outbox database: ${error.message}`));
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new Error(`cannot connect to the outbox database (EVENT_BUS_OUTBOX_URL): ${(error as Error).message}`);
    }
    return pool;
  }
}
