import { AsyncLocalStorage } from 'node:async_hooks';
import type { ModuleRef } from '@nestjs/core';
import type { PublishOptions } from '../domain-event-bus.js';
import type { DomainEventRegistration } from '../registry/event-registry.js';
import type { OutsideTransaction } from './outbox-options.js';
import { statementRunner, type OutboxTransaction } from './outbox-transaction.js';
import type { OutboxRow, OutboxWriter } from './outbox-writer.js';

/** The parts of `@nestjs-cls/transactional`'s TransactionHost the outbox uses. */
interface TransactionHostLike {
  readonly tx: unknown;
  isTransactionActive(): boolean;
}

type Wrap = (options: unknown, fn: () => Promise<unknown>, ...rest: unknown[]) => Promise<unknown>;

/** The adapter's options the host keeps: how it opens a transaction (and a nested one) around a function. */
interface AdapterOptions {
  wrapWithTransaction?: Wrap;
  wrapWithNestedTransaction?: Wrap;
  [WRAPPED]?: true;
}

const WRAPPED = Symbol('nestjs-domain-events.outbox');
const RESOLVED = Promise.resolve();

/** The events captured in one transaction (or savepoint), written just before it commits. */
interface TransactionScope {
  readonly rows: Array<{ readonly tx: OutboxTransaction; readonly row: OutboxRow }>;
  /** An event that could not be encoded: the transaction must not commit without it. */
  failure?: unknown;
}

export class OutsideTransactionError extends Error {
  override readonly name = 'OutsideTransactionError';
}

/**
 * Publishing inside `@Transactional()` (nestjs-cls): `DomainEventBus.publish`, the CQRS `EventBus` and
 * `AggregateRoot.commit()` write to the outbox in the active transaction, with no change to their callers.
 *
 * A CQRS publish returns nothing and an ORM runs a query some microtasks after it is called, so a write
 * started at publish time could reach the database after the COMMIT. Instead the events of a transaction
 * are kept beside it (an AsyncLocalStorage scope opened around the transactional function) and written
 * with one statement when the function has returned, still inside the transaction: the adapter's
 * `wrapWithTransaction` is wrapped to do it. A write that fails fails the function, so the transaction
 * rolls back and the caller sees the error.
 */
export class ClsTransactions {
  private readonly scopes = new AsyncLocalStorage<TransactionScope>();

  private constructor(
    private readonly host: TransactionHostLike,
    private readonly writer: OutboxWriter,
    private readonly outside: OutsideTransaction,
  ) {}

  /** The default TransactionHost's integration, or undefined when `@nestjs-cls/transactional` is not installed or not registered. */
  static async find(moduleRef: ModuleRef, writer: OutboxWriter, outside: OutsideTransaction): Promise<ClsTransactions | undefined> {
    let TransactionHost: unknown;
    try {
      const cls = (await import('@nestjs-cls/transactional')) as { TransactionHost?: unknown; default?: { TransactionHost?: unknown } };
      TransactionHost = cls.TransactionHost ?? cls.default?.TransactionHost;
    } catch {
      return undefined;
    }
    let host: TransactionHostLike & { _options?: AdapterOptions };
    try {
      host = moduleRef.get(TransactionHost as never, { strict: false });
    } catch {
      return undefined;
    }
    const adapter = host._options;
    if (typeof adapter?.wrapWithTransaction !== 'function') {
      throw new Error('this version of @nestjs-cls/transactional is not supported by the outbox: its TransactionHost has no wrapWithTransaction');
    }
    const integration = new ClsTransactions(host, writer, outside);
    integration.wrap(adapter);
    return integration;
  }

  /**
   * Takes an event published inside a transaction (settles at once: it is written before commit),
   * rejects one published outside when that is forbidden, and otherwise returns undefined.
   */
  capture(event: object, registration: DomainEventRegistration, options: PublishOptions | undefined): Promise<void> | undefined {
    if (!this.host.isTransactionActive()) {
      if (this.outside === 'direct') return undefined;
      return Promise.reject(
        new OutsideTransactionError(`${registration.name} was published outside a transaction (outbox.outside is "reject"): publish it inside @Transactional()`),
      );
    }
    const scope = this.scopes.getStore();
    const tx = this.host.tx as OutboxTransaction;
    let row: OutboxRow;
    try {
      row = this.writer.row(event, options, registration);
    } catch (error) {
      if (scope) scope.failure ??= error;
      return Promise.reject(error);
    }
    if (!scope) return this.writer.insert(statementRunner(tx), [row]); // a transaction opened before the outbox started
    scope.rows.push({ tx, row });
    return RESOLVED;
  }

  private wrap(adapter: AdapterOptions): void {
    if (adapter[WRAPPED]) return;
    adapter[WRAPPED] = true;
    for (const name of ['wrapWithTransaction', 'wrapWithNestedTransaction'] as const) {
      const original = adapter[name];
      if (typeof original !== 'function') continue;
      adapter[name] = (options, fn, ...rest) => original.call(adapter, options, () => this.runInScope(fn), ...rest);
    }
  }

  private async runInScope(fn: () => Promise<unknown>): Promise<unknown> {
    const scope: TransactionScope = { rows: [] };
    const result = await this.scopes.run(scope, fn);
    if (scope.failure) throw scope.failure;
    // Rows of one transaction object go in one statement; a function rarely writes through two.
    let start = 0;
    for (let i = 1; i <= scope.rows.length; i++) {
      if (i < scope.rows.length && scope.rows[i].tx === scope.rows[start].tx) continue;
      await this.writer.insert(statementRunner(scope.rows[start].tx), scope.rows.slice(start, i).map((r) => r.row));
      start = i;
    }
    return result;
  }
}
