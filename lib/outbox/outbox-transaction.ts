/**
 * The caller's transaction, in any of the shapes the outbox writes through. Recognised by shape,
 * so that no ORM is a dependency:
 * - a `pg` client (`Client` or a `PoolClient`) on which the caller ran BEGIN: `query(text, values)`;
 * - a TypeORM `EntityManager` of a transaction (`dataSource.transaction(m => …)`) or a `QueryRunner`
 *   after `startTransaction()`: `query(text, parameters)`;
 * - a Kysely `Transaction` (`db.transaction().execute(trx => …)`): `executeQuery(CompiledQuery.raw(…))`.
 */
export type OutboxTransaction = object;

/** Runs one parameterised statement (`$1`, `$2`, …) in the transaction. */
export type StatementRunner = (text: string, values: unknown[]) => Promise<unknown>;

interface Queryable {
  query(text: string, values: unknown[]): Promise<unknown>;
}

interface KyselyTransaction {
  readonly isTransaction: boolean;
  executeQuery(query: unknown): Promise<unknown>;
}

interface TypeOrmManager extends Queryable {
  readonly connection: object;
  readonly queryRunner?: { readonly isTransactionActive: boolean };
}

interface TypeOrmQueryRunner extends Queryable {
  readonly isTransactionActive: boolean;
  readonly manager: object;
}

let kysely: Promise<typeof import('kysely')> | undefined;

const has = (value: object, key: string): boolean => key in value;
const isFunction = (value: object, key: string): boolean => typeof (value as Record<string, unknown>)[key] === 'function';

export class NotATransactionError extends Error {
  override readonly name = 'NotATransactionError';
}

/**
 * How to run a statement in `tx`; throws NotATransactionError for what is not a transaction the outbox
 * can write in (a pool, a Kysely instance or an EntityManager outside a transaction would each run
 * the write on its own, committed whatever happens to the caller's transaction).
 */
export function statementRunner(tx: OutboxTransaction): StatementRunner {
  if (tx === null || typeof tx !== 'object') throw new NotATransactionError(`expected a transaction, got ${tx === null ? 'null' : typeof tx}`);
  if (isFunction(tx, 'executeQuery') && has(tx, 'isTransaction')) {
    const trx = tx as KyselyTransaction;
    if (!trx.isTransaction) throw new NotATransactionError('this Kysely instance is not a transaction: pass the trx of db.transaction().execute(trx => …)');
    return async (text, values) => {
      // Loaded only here: whoever passes a Kysely transaction has kysely installed.
      const { CompiledQuery } = await (kysely ??= import('kysely'));
      return trx.executeQuery(CompiledQuery.raw(text, values));
    };
  }
  if (!isFunction(tx, 'query')) {
    throw new NotATransactionError(`${tx.constructor?.name ?? 'object'} is not a transaction: expected a pg client, a TypeORM EntityManager or QueryRunner, or a Kysely Transaction`);
  }
  if (has(tx, 'connection') && isFunction(tx, 'getRepository')) {
    if (!(tx as TypeOrmManager).queryRunner?.isTransactionActive) {
      throw new NotATransactionError('this EntityManager is not in a transaction: pass the manager of dataSource.transaction(manager => …)');
    }
  } else if (isFunction(tx, 'startTransaction') && has(tx, 'isTransactionActive')) {
    if (!(tx as TypeOrmQueryRunner).isTransactionActive) throw new NotATransactionError('this QueryRunner is not in a transaction: call startTransaction() first');
  } else if (isFunction(tx, 'connect') && has(tx, 'totalCount')) {
    throw new NotATransactionError('a pg Pool is not a transaction: pass the client you ran BEGIN on (const client = await pool.connect())');
  }
  const queryable = tx as Queryable;
  return (text, values) => queryable.query(text, values);
}
