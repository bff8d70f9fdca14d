import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portOpen, stopServer, waitFor } from './nats-server.js';
import type { TlsFiles } from './tls-certificates.js';

/** The redis-server binary: $REDIS_SERVER_BIN, else PATH, else Debian's location. */
export function redisServerBinary(): string {
  if (process.env.REDIS_SERVER_BIN) return process.env.REDIS_SERVER_BIN;
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/bin', '/usr/local/bin', '/usr/sbin')) {
    const candidate = join(dir, 'redis-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('redis-server not found: install it (apt-get install redis-server) or set REDIS_SERVER_BIN');
}

export interface RedisServerOptions {
  password?: string;
  /** Serve TLS only, with these files (clients are not asked for certificates). */
  tls?: TlsFiles;
  /** When the append-only file is fsynced: on every write (the default here, so that kill -9 loses nothing acknowledged), or every second. */
  appendfsync?: 'always' | 'everysec';
}

/**
 * A redis-server of a test's own: a free port, an append-only file fsynced on every write in a temp
 * dir (an acknowledged write survives kill -9), and the means to kill -9 and restart it on the same data.
 */
export class RedisServer {
  private process?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'redis-test-')), options);
    await server.restart();
    return server;
  }

  get url(): string {
    const auth = this.options.password ? `:${encodeURIComponent(this.options.password)}@` : '';
    return `${this.options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on the same port and data. */
  async restart(): Promise<void> {
    if (this.process) throw new Error('redis-server is already running');
    const { password, tls, appendfsync = 'always' } = this.options;
    const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', appendfsync, '--dir', this.dir];
    if (tls) {
      args.push('--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.serverCert, '--tls-key-file', tls.serverKey);
      args.push('--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no');
    } else args.push('--port', String(this.port));
    if (password) args.push('--requirepass', password);
    const child = spawn(redisServerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      await waitFor(`redis-server on port ${this.port}`, async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
        return output.includes('Ready to accept connections') && (await portOpen(this.port));
      });
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** SIGKILL: no goodbye to clients; what was fsynced to the append-only file stays. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** Stops the server and removes its data. */
  async dispose(): Promise<void> {
    await this.signal('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private signal(signal: NodeJS.Signals): Promise<void> {
    return stopServer(this.process, signal, this.port);
  }
}
