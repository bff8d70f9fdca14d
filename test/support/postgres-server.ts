import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitFor } from './nats-server.js';

/** A pg Pool for a test: an idle client losing its server (as the test stops it) must not crash the process. */
export function testPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url });
  pool.on('error', () => undefined);
  return pool;
}

/** The PostgreSQL server binaries: $POSTGRES_BIN_DIR, else the newest of Debian's /usr/lib/postgresql/<major>/bin. */
export function postgresBinDir(): string {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? execFileSync('ls', [root]).toString().split('\n').filter((m) => /^\d+$/.test(m)) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error('PostgreSQL not found: install it (apt-get install postgresql) or set POSTGRES_BIN_DIR');
  return join(root, newest, 'bin');
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` OS user. */
function asServerUser(binary: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
}

/**
 * A PostgreSQL server of a test's own: initdb into a temp dir, a free port on 127.0.0.1, the socket
 * in the temp dir, trust authentication, fsync off unless durable (a test server need not survive a power cut).
 * Never the developer's server on 5432.
 */
export class PostgresServer {
  private process?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly durable: boolean,
  ) {}

  /** `durable`: fsync and synchronous commit as a production server has them (for benchmarks). */
  static async start({ durable = false } = {}): Promise<PostgresServer> {
    const dir = mkdtempSync(join(tmpdir(), 'pg-test-'));
    if (userInfo().uid === 0) {
      const { uid, gid } = postgresUser();
      chownSync(dir, uid, gid);
    }
    const dataDir = join(dir, 'data');
    const [initdb, args] = asServerUser(join(postgresBinDir(), 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    execFileSync(initdb, args, { stdio: 'pipe' });
    const server = new PostgresServer(await freePort(), dataDir, durable);
    await server.restart();
    return server;
  }

  /** A connection URL for the `postgres` database (or another one). */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async restart(): Promise<void> {
    if (this.process) throw new Error('postgres is already running');
    const [postgres, args] = asServerUser(join(postgresBinDir(), 'postgres'), [
      '-D', this.dataDir, '-p', String(this.port), '-k', join(this.dataDir, '..'),
      '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'shared_buffers=64MB',
      ...(this.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ]);
    const child = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      await waitFor(
        `postgres on port ${this.port}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
          return this.accepts();
        },
        20_000,
      );
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Creates a database and returns its URL (one per test file keeps suites apart). */
  createDatabase(name: string): string {
    this.psql('postgres', `CREATE DATABASE "${name}"`);
    return this.url(name);
  }

  psql(database: string, sql: string): string {
    return execFileSync(join(postgresBinDir(), 'psql'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', database, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      stdio: 'pipe',
    }).toString();
  }

  /** Stops the server (fast shutdown) and removes its data. */
  async dispose(): Promise<void> {
    await this.signal('SIGINT');
    rmSync(join(this.dataDir, '..'), { recursive: true, force: true });
  }

  /** SIGKILL of the postmaster: connections die without a goodbye, uncommitted work is lost. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** Signals the postmaster itself (its pid file), not runuser around it, and waits for it to be gone. */
  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, signal);
    await exited;
  }

  private accepts(): boolean {
    try {
      execFileSync(join(postgresBinDir(), 'pg_isready'), ['-h', '127.0.0.1', '-p', String(this.port), '-q'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}
