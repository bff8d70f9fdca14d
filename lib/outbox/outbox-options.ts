import { asBoolean, asString, EventBusConfigError, integerSetting, oneOf, pick, type Env } from '../config/settings.js';
import type { OutboxPool } from './pg-types.js';

/** What a publish outside a database transaction does once the outbox is configured. */
export type OutsideTransaction = 'direct' | 'reject';

export interface OutboxOptions {
  /** PostgreSQL URL of the database that holds the outbox table (the relay's connections, the migration). */
  url?: string;
  /** An existing `pg` Pool instead of `url` (the application keeps owning it; the relay holds one of its clients for LISTEN). */
  pool?: OutboxPool;
  /** Schema of the outbox table. */
  schema?: string;
  /** Name of the outbox table. */
  table?: string;
  /** Create the table (and its index and trigger) at startup if missing; else startup fails when it is missing. */
  migrate?: boolean;
  /** With `@nestjs-cls/transactional`: outside a transaction, publish directly (as without the outbox) or reject. */
  outside?: OutsideTransaction;
  /** Run the relay in this instance (every instance may: they share the work without a leader). */
  relay?: boolean;
  /** Rows the relay claims and sends per batch. */
  batchSize?: number;
  /** How often the relay looks for rows when no notification came (LISTEN/NOTIFY wakes it at once). */
  pollIntervalMs?: number;
  /** How long sent rows are kept (marked sent); 0 deletes them once sent. */
  retentionMs?: number;
}

export interface ResolvedOutboxOptions {
  readonly url: string | undefined;
  readonly pool: OutboxPool | undefined;
  readonly schema: string;
  readonly table: string;
  readonly migrate: boolean;
  readonly outside: OutsideTransaction;
  readonly relay: boolean;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly retentionMs: number;
}

/** A PostgreSQL identifier we quote ourselves: no quoting games, and within the 63-byte limit. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * The outbox settings from code, then the environment, then defaults; undefined when the outbox is not
 * configured (no `outbox` section and no EVENT_BUS_OUTBOX_URL). A bad one fails naming the option or variable.
 */
export function resolveOutboxOptions(outbox: OutboxOptions | undefined, env: Env = process.env): ResolvedOutboxOptions | undefined {
  const url = pick(outbox?.url, 'outbox.url', env, 'EVENT_BUS_OUTBOX_URL', asString);
  if (!outbox && url.value === undefined) return undefined;
  const pool = outbox?.pool;
  if (url.value === undefined && !pool) url.fail('the outbox needs a PostgreSQL URL or an existing pg Pool (outbox.pool)');
  if (url.value !== undefined && !/^postgres(ql)?:\/\//.test(url.value)) url.fail('expected a postgres:// or postgresql:// URL');
  if (pool && (typeof pool.query !== 'function' || typeof pool.connect !== 'function')) {
    throw new EventBusConfigError('option outbox.pool: expected a pg Pool (with query() and connect())');
  }
  const identifier = (code: string | undefined, name: string, variable: string, fallback: string) => {
    const setting = pick(code, `outbox.${name}`, env, variable, asString);
    const value = setting.value ?? fallback;
    if (!IDENTIFIER.test(value)) setting.fail('expected a PostgreSQL identifier: letters, digits and "_", not starting with a digit, at most 63 characters');
    return value;
  };
  const schema = identifier(outbox?.schema, 'schema', 'EVENT_BUS_OUTBOX_SCHEMA', 'public');
  const table = identifier(outbox?.table, 'table', 'EVENT_BUS_OUTBOX_TABLE', 'event_outbox');
  if (schema.length + 1 + table.length > 63) {
    throw new EventBusConfigError(`options outbox.schema and outbox.table: "${schema}.${table}" names the LISTEN channel, at most 63 characters`);
  }
  const int = (code: number | undefined, name: string, variable: string, min: number, fallback: number) =>
    integerSetting(env, code, `outbox.${name}`, variable, min, fallback);
  return {
    url: url.value,
    pool,
    schema,
    table,
    migrate: pick(outbox?.migrate, 'outbox.migrate', env, 'EVENT_BUS_OUTBOX_MIGRATE', asBoolean).value ?? false,
    outside: oneOf(pick(outbox?.outside, 'outbox.outside', env, 'EVENT_BUS_OUTBOX_OUTSIDE', asString as (raw: string) => OutsideTransaction), ['direct', 'reject'], 'direct'),
    relay: pick(outbox?.relay, 'outbox.relay', env, 'EVENT_BUS_OUTBOX_RELAY', asBoolean).value ?? true,
    batchSize: int(outbox?.batchSize, 'batchSize', 'EVENT_BUS_OUTBOX_BATCH_SIZE', 1, 500),
    pollIntervalMs: int(outbox?.pollIntervalMs, 'pollIntervalMs', 'EVENT_BUS_OUTBOX_POLL_INTERVAL_MS', 10, 1_000),
    retentionMs: int(outbox?.retentionMs, 'retentionMs', 'EVENT_BUS_OUTBOX_RETENTION_MS', 0, 0),
  };
}
