import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, portOpen, waitFor } from './nats-server.js';

/** Debian's RabbitMQ scripts: the server without the wrapper that switches user, and its control tool. */
const SBIN = process.env.RABBITMQ_SBIN ?? '/usr/lib/rabbitmq/bin';
/** A cold start takes 5–30 s on a busy 2-core machine; a restart after kill -9 up to ~40 s. */
const START_TIMEOUT_MS = 90_000;

export interface RabbitMqServerOptions {
  /** TLS listener (certificate files); `amqps://` on `tlsPort` then. */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

/**
 * A RabbitMQ node of a test's own: its own node name, AMQP, distribution and epmd ports, and
 * data directory, so that it never meets a RabbitMQ running on this machine. It can be killed
 * with -9 and restarted on the same data.
 */
export class RabbitMqServer {
  private process?: ChildProcess;
  private readonly nodeName: string;

  private constructor(
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly distPort: number,
    private readonly epmdPort: number,
    readonly dir: string,
  ) {
    this.nodeName = `rtest-${port}@localhost`;
  }

  static async start(options: RabbitMqServerOptions = {}): Promise<RabbitMqServer> {
    if (!existsSync(join(SBIN, 'rabbitmq-server'))) {
      throw new Error(`rabbitmq-server not found in ${SBIN}: install it (apt-get install rabbitmq-server) or set RABBITMQ_SBIN`);
    }
    const [port, distPort, epmdPort, tlsPort] = [await freePort(), await freePort(), await freePort(), options.tls ? await freePort() : undefined];
    const dir = mkdtempSync(join(tmpdir(), 'rabbitmq-test-'));
    for (const sub of ['log', 'mnesia', 'home']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    // Empty: shadows /etc/rabbitmq/rabbitmq-env.conf, which names the machine's own node.
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    const conf = [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      'loopback_users = none',
      'log.console = false',
      'log.file.level = warning',
    ];
    if (options.tls) {
      conf.push(
        `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${options.tls.caFile}`,
        `ssl_options.certfile = ${options.tls.certFile}`,
        `ssl_options.keyfile = ${options.tls.keyFile}`,
        'ssl_options.verify = verify_none',
        'ssl_options.fail_if_no_peer_cert = false',
      );
    }
    writeFileSync(join(dir, 'rabbitmq.conf'), `${conf.join('\n')}\n`);
    const server = new RabbitMqServer(port, tlsPort, distPort, epmdPort, dir);
    await server.restart();
    return server;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  private env(): NodeJS.ProcessEnv {
    const dir = this.dir;
    return {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'), // the Erlang cookie is created here
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(dir, 'pid'),
      RABBITMQ_SERVER_START_ARGS: `-kernel inet_dist_listen_min ${this.distPort} -kernel inet_dist_listen_max ${this.distPort} -kernel inet_dist_use_interface {127,0,0,1}`,
    };
  }

  /** Starts the node (again) on the same ports and data; resolves once it accepts AMQP connections. */
  async restart(): Promise<void> {
    if (this.process) throw new Error('rabbitmq-server is already running');
    rmSync(join(this.dir, 'pid'), { force: true });
    const child = spawn(join(SBIN, 'rabbitmq-server'), [], { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      await waitFor(
        `rabbitmq-server on port ${this.port}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`rabbitmq-server exited with ${child.exitCode}: ${stderr}${this.log()}`);
          return (await portOpen(this.port)) && existsSync(join(this.dir, 'pid'));
        },
        START_TIMEOUT_MS,
      );
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  /** rabbitmqctl against this node (add_user, set_permissions, list_queues …); resolves to its output. */
  async ctl(...args: string[]): Promise<string> {
    const env = { ...this.env(), RABBITMQ_NODENAME: undefined };
    const { stdout } = await promisify(execFile)(join(SBIN, 'rabbitmqctl'), ['-n', this.nodeName, ...args], { env, timeout: 60_000 });
    return stdout;
  }

  /** SIGKILL to the Erlang VM: no goodbye to clients, nothing flushed beyond what the OS has. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const vm = this.vmPid();
    if (vm !== undefined) signal(vm, 'SIGKILL');
    signal(-child.pid!, 'SIGKILL'); // the wrapper script and what it started
    await exited;
    if (vm !== undefined) await waitFor(`the Erlang VM ${vm} to exit`, async () => !alive(vm), 30_000);
    await waitFor(`port ${this.port} to close`, async () => !(await portOpen(this.port)), 30_000);
  }

  /** A clean stop (SIGTERM: the wrapper stops the node as rabbitmqctl stop would). */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
    await waitFor(`port ${this.port} to close`, async () => !(await portOpen(this.port)), 30_000);
  }

  /** Kills the node and its epmd, and removes its data (kept with RABBITMQ_TEST_KEEP=1, to read its log). */
  async dispose(): Promise<void> {
    await this.kill();
    await promisify(execFile)('epmd', ['-port', String(this.epmdPort), '-kill'], { env: this.env() }).catch(() => undefined);
    if (process.env.RABBITMQ_TEST_KEEP) console.log(`RabbitMQ test node kept: ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }

  private vmPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private log(): string {
    try {
      return `\n${readFileSync(join(this.dir, 'log', `${this.nodeName}.log`), 'utf8').slice(-4_000)}`;
    } catch {
      return '';
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
