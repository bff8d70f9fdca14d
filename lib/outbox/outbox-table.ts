import type { PgQueryable } from './pg-types.js';

/** Where the outbox lives: `<schema>.<table>` (both validated identifiers, see outbox-options.ts). */
export interface OutboxTableName {
  readonly schema: string;
  readonly table: string;
}

/**
 * The outbox table and the statements on it. One row per committed event: its CloudEvents id, the
 * subject it goes to, its routing key (events of one key are sent in `seq` order) and the encoded
 * event exactly as it goes on the wire. A statement-level trigger notifies the relays, which
 * PostgreSQL delivers only when the writing transaction commits.
 */
export class OutboxTable {
  readonly qualified: string;
  /** The LISTEN/NOTIFY channel. */
  readonly channel: string;
  readonly insert: string;
  readonly claim: string;
  readonly deleteSent: string;
  readonly markSent: string;
  readonly sweepSent: string;
  readonly lag: string;
  readonly probe: string;

  constructor(readonly name: OutboxTableName) {
    const t = `"${name.schema}"."${name.table}"`;
    this.qualified = t;
    this.channel = `${name.schema}.${name.table}`;
    // unnest: one statement and one round trip for any number of events, in their order.
    this.insert = `INSERT INTO ${t} (id, subject, routing_key, payload) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])`;
    // Claims the oldest unsent rows after $2 that no other relay holds. previous_of_key is the unsent row of
    // the same key just before, locked or not: a row may go only when that one is sent or goes in this same
    // batch before it, so that a row another relay holds is never overtaken (order per key).
    this.claim = `WITH claimed AS (
        SELECT seq, id, subject, routing_key, payload FROM ${t} WHERE sent_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
      )
      SELECT c.seq, c.id, c.subject, c.routing_key, c.payload,
        CASE WHEN c.routing_key IS NULL THEN NULL
          ELSE (SELECT max(e.seq) FROM ${t} e WHERE e.routing_key = c.routing_key AND e.sent_at IS NULL AND e.seq < c.seq) END AS previous_of_key
      FROM claimed c ORDER BY c.seq`;
    this.deleteSent = `DELETE FROM ${t} WHERE seq = ANY($1::bigint[])`;
    this.markSent = `UPDATE ${t} SET sent_at = now() WHERE seq = ANY($1::bigint[])`;
    this.sweepSent = `DELETE FROM ${t} WHERE seq IN (SELECT seq FROM ${t} WHERE sent_at < now() - $1 * interval '1 millisecond' LIMIT 10000)`;
    this.lag = `SELECT count(*)::bigint AS unsent, coalesce(floor(extract(epoch FROM now() - min(created_at)) * 1000), 0)::bigint AS oldest_ms FROM ${t} WHERE sent_at IS NULL`;
    this.probe = `SELECT seq, id, subject, routing_key, payload, created_at, sent_at FROM ${t} LIMIT 0`;
  }

  /** The migration, idempotent: what `outbox.migrate` runs at startup and what the README prints. */
  migrationSql(): string {
    const { schema, table } = this.name;
    const t = this.qualified;
    // The public schema exists, and creating it (even IF NOT EXISTS) needs a privilege an application role may lack.
    const createSchema = schema === 'public' ? '' : `CREATE SCHEMA IF NOT EXISTS "${schema}";\n`;
    return `${createSchema}CREATE TABLE IF NOT EXISTS ${t} (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id          text        NOT NULL,
  subject     text        NOT NULL,
  routing_key text,
  payload     bytea       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);
CREATE INDEX IF NOT EXISTS "${table}_unsent" ON ${t} (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS "${table}_unsent_key" ON ${t} (routing_key, seq) WHERE sent_at IS NULL AND routing_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS "${table}_sent" ON ${t} (sent_at) WHERE sent_at IS NOT NULL;
CREATE OR REPLACE FUNCTION "${schema}"."${table}_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${this.channel}', '');
  RETURN NULL;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${table}_notify' AND tgrelid = '${t}'::regclass) THEN
    CREATE TRIGGER "${table}_notify" AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION "${schema}"."${table}_notify"();
  END IF;
END $$;
`;
  }

  /**
   * Runs the migration as one implicit transaction (one simple query of several statements); an
   * advisory lock keeps instances starting together from racing on it.
   */
  async migrate(db: PgQueryable): Promise<void> {
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('${this.channel}'));\n${this.migrationSql()}`);
  }

  /** Fails with what to do when the table is missing or lacks a column. */
  async check(db: PgQueryable): Promise<void> {
    const { rows } = await db.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [this.qualified]);
    if (!rows[0]?.found) {
      throw new Error(
        `the outbox table ${this.channel} does not exist: set outbox.migrate (EVENT_BUS_OUTBOX_MIGRATE=true) to create it at startup, ` +
          'or run the SQL in the README (OutboxTable.migrationSql())',
      );
    }
    try {
      await db.query(this.probe);
    } catch (error) {
      throw new Error(`the outbox table ${this.channel} does not have the expected columns: ${(error as Error).message}`);
    }
  }
}
