/**
 * The parts of `pg` the outbox uses, structurally: `pg` is an optional peer, loaded only when the
 * outbox is configured, so that neither its code nor its types are needed otherwise.
 */
export interface PgResult<R = Record<string, unknown>> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

export interface PgQueryable {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgResult<R>>;
}

export interface PgNotification {
  readonly channel: string;
}

export interface OutboxPoolClient extends PgQueryable {
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (notification: PgNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** A `pg` Pool (the one the outbox creates from its URL, or one given in `outbox.pool`). */
export interface OutboxPool extends PgQueryable {
  connect(): Promise<OutboxPoolClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Loads `pg`, failing with one clear message when it is not installed. */
export async function loadPg(): Promise<{ Pool: new (config: { connectionString: string; max?: number; application_name?: string }) => OutboxPool }> {
  try {
    const pg = (await import('pg')) as unknown as { default?: unknown; Pool?: unknown };
    return (pg.default ?? pg) as Awaited<ReturnType<typeof loadPg>>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error('the transactional outbox needs the PostgreSQL client "pg": npm install pg');
  }
}
