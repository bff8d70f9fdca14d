import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The nats-server binary: $NATS_SERVER_BIN, else PATH, else Debian's location. */
export function natsServerBinary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/usr/local/bin', '/usr/bin')) {
    const candidate = join(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('nats-server not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A nats-server of a test's own: a free port, JetStream in a temp dir, and the means to
 * stop, kill -9 and restart it on the same port and store.
 */
export class NatsServer {
  private process?: ChildProcess;
  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly extraArgs: string[],
  ) {}

  static async start(extraArgs: string[] = []): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'nats-test-')), extraArgs);
    await server.restart();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on the same port and store. */
  async restart(): Promise<void> {
    if (this.process) throw new Error('nats-server is already running');
    const child = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...this.extraArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      await waitFor(`nats-server on port ${this.port}`, async () => {
        if (child.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
        return portOpen(this.port);
      });
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** SIGKILL: no goodbye to clients, no flush of the store beyond what the OS has. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** SIGSTOP: the server holds its connections but answers nothing until resume(). */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Graceful stop (SIGTERM). */
  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  /** Stops the server and removes its store. */
  async dispose(): Promise<void> {
    await this.signal('SIGKILL');
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  private signal(signal: NodeJS.Signals): Promise<void> {
    return stopServer(this.process, signal, this.port);
  }
}

/** Signals a server process and resolves once it exited and its port is closed. */
export async function stopServer(child: ChildProcess | undefined, signal: NodeJS.Signals, port: number): Promise<void> {
  if (!child) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
  await waitFor(`port ${port} to close`, async () => !(await portOpen(port)));
}
