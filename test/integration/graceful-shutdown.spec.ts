import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { eventually } from '../support/instances.js';
import { freePort, NatsServer } from '../support/nats-server.js';

const SHUTDOWN_MAIN = join(process.cwd(), '.test-build/test/fixtures/shutdown-main.js');

interface ShutdownRecord {
  what: string;
  id: string;
}

/** One HTTP application as its own process, stopped the way a deployment stops it: SIGTERM. */
class HttpInstance {
  private stderr = '';

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly recordFile: string,
  ) {
    child.stderr!.on('data', (chunk) => (this.stderr += chunk));
  }

  static async start(name: string, recordDir: string, env: Record<string, string>): Promise<HttpInstance> {
    const port = await freePort();
    const recordFile = join(recordDir, `${name}.jsonl`);
    const child = fork(SHUTDOWN_MAIN, [], {
      env: { ...process.env, ...env, PORT: String(port), FIXTURE_NAME: name, FIXTURE_RECORD_FILE: recordFile },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const instance = new HttpInstance(name, port, child, recordFile);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready: ${instance.stderr}`)));
      child.once('message', () => resolve());
    });
    child.removeAllListeners('exit');
    return instance;
  }

  records(): ShutdownRecord[] {
    if (!existsSync(this.recordFile)) return [];
    return readFileSync(this.recordFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  }

  has(what: string, id: string): boolean {
    return this.records().some((r) => r.what === what && r.id === id);
  }

  publish(id: string): void {
    this.child.send({ publish: id });
  }

  /** SIGTERM; resolves with how the process ended once it has, and says what it wrote to stderr. */
  terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal, stderr: this.stderr })),
    );
    this.child.kill('SIGTERM');
    return exited;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describe.each(['nats', 'jetstream'] as const)('graceful shutdown on SIGTERM over %s', (transport) => {
  let server: NatsServer;
  let recordDir: string;
  const running: HttpInstance[] = [];
  const start = async (name: string) => {
    const instance = await HttpInstance.start(name, recordDir, {
      EVENT_BUS_TRANSPORT: transport,
      NATS_URL: server.url,
      EVENT_BUS_INSTANCE_ID: name,
      EVENT_BUS_ACK_WAIT_MS: '1000',
    });
    running.push(instance);
    return instance;
  };

  beforeAll(async () => {
    server = await NatsServer.start();
    recordDir = mkdtempSync(join(tmpdir(), 'shutdown-'));
  });

  afterAll(async () => {
    for (const instance of running) instance.kill();
    await server.dispose();
    rmSync(recordDir, { recursive: true, force: true });
  });

  it('delivers what is published in shutdown hooks and by requests in flight, and finishes (and acks) handlers in flight', async () => {
    const stopping = await start(`stopping-${transport}`);
    // Only member of its group yet: the slow event is surely its own.
    if (transport === 'jetstream') {
      stopping.publish('slow-1');
      await eventually(() => expect(stopping.has('slow:start', 'slow-1')).toBe(true));
    }
    const other = await start(`other-${transport}`);

    const request = fetch(`http://127.0.0.1:${stopping.port}/slow-publish?id=in-flight-1&delayMs=1500`).then(async (r) => [r.status, await r.text()]);
    await eventually(() => expect(stopping.has('request:received', 'in-flight-1')).toBe(true));
    const exit = await stopping.terminate();

    expect(await request).toEqual([200, 'published']);
    expect(exit).toMatchObject({ signal: 'SIGTERM' });
    expect(exit.stderr).toBe('');
    await eventually(() => {
      for (const id of ['in-flight-1', `${stopping.name}:on-module-destroy`, `${stopping.name}:before-application-shutdown`]) {
        expect([id, other.has('seen', id)]).toEqual([id, true]);
      }
    });

    if (transport === 'jetstream') {
      expect(stopping.has('slow:done', 'slow-1')).toBe(true);
      // Acknowledged: nothing awaits an ack on the group's consumer, and the other member, waiting
      // past the ack wait, never got it again.
      const nc = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(nc);
        const consumers = await jsm.consumers.list('DOMAIN_EVENTS').next();
        const group = consumers.find((c) => c.name.startsWith('shutdown-slow__'))!;
        expect(group).toMatchObject({ num_ack_pending: 0, num_redelivered: 0 });
      } finally {
        await nc.close();
      }
      await new Promise((r) => setTimeout(r, 1_500));
      expect(other.has('slow:start', 'slow-1')).toBe(false);
    }
  });
});
