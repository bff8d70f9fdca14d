import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { EventBusStatus } from '../../lib/index.js';
import { instanceAppModule, InstanceCommands, type InstanceAppOptions } from '../fixtures/instance-app.js';
import type { HandlerRecord, InstanceCommand, InstanceReply } from './instance-protocol.js';

/** One running application instance, in this process or another. */
export interface Instance {
  readonly name: string;
  send(command: Exclude<InstanceCommand, { cmd: 'records' | 'status' }>): Promise<unknown>;
  records(): Promise<HandlerRecord[]>;
  status(): Promise<EventBusStatus>;
  close(): Promise<void>;
}

abstract class BaseInstance implements Instance {
  constructor(readonly name: string) {}
  abstract send(command: InstanceCommand): Promise<unknown>;
  abstract close(): Promise<void>;

  records(): Promise<HandlerRecord[]> {
    return this.send({ cmd: 'records' }) as Promise<HandlerRecord[]>;
  }

  status(): Promise<EventBusStatus> {
    return this.send({ cmd: 'status' }) as Promise<EventBusStatus>;
  }
}

export class InProcessInstance extends BaseInstance {
  private constructor(
    name: string,
    private readonly app: INestApplicationContext,
  ) {
    super(name);
  }

  static async start(name: string, options: InstanceAppOptions): Promise<InProcessInstance> {
    const app = await NestFactory.createApplicationContext(instanceAppModule(options), { logger: ['error'] });
    return new InProcessInstance(name, app);
  }

  async send(command: InstanceCommand): Promise<unknown> {
    if (command.cmd === 'close') return this.close();
    // Copy what crosses the boundary, as IPC would: the suite must not see live objects.
    return structuredClone(await this.app.get(InstanceCommands).run(command));
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

const INSTANCE_MAIN = join(process.cwd(), '.test-build/test/fixtures/instance-main.js');

/** An instance in its own Node process (compiled by the jest global setup), driven over IPC. */
export class ChildProcessInstance extends BaseInstance {
  private nextSeq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';
  private logged = '';

  private constructor(
    name: string,
    readonly child: ChildProcess,
  ) {
    super(name);
    child.stderr?.on('data', (chunk) => {
      this.stderr += chunk;
      this.log(chunk);
    });
    child.stdout?.on('data', (chunk) => this.log(chunk));
    child.on('message', ({ seq, reply }: { seq: number; reply: InstanceReply }) => {
      const waiter = this.pending.get(seq);
      if (!waiter) return;
      this.pending.delete(seq);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${code ?? signal}): ${this.stderr}`));
      this.pending.clear();
    });
  }

  /** Forks the instance and resolves once it reports its bus ready; rejects with its stderr when it exits instead. */
  static start(name: string, env: Record<string, string>): Promise<ChildProcessInstance> {
    const child = fork(INSTANCE_MAIN, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const instance = new ChildProcessInstance(name, child);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${name} exited with ${code} before it was ready: ${instance.stderr}`));
      child.once('exit', onExit);
      child.once('message', (message: { ready?: boolean }) => {
        if (!message.ready) return;
        child.off('exit', onExit);
        resolve(instance);
      });
    });
  }

  /** The exit of a process expected to fail at startup: its code and what it wrote to stderr. */
  static async failToStart(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = fork(INSTANCE_MAIN, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stderr };
  }

  /** What the process wrote to stdout and stderr so far (its last 4 MB). */
  output(): string {
    return this.logged;
  }

  private log(chunk: Buffer): void {
    if (process.env.DEBUG_INSTANCES) process.stdout.write(chunk);
    this.logged = (this.logged + chunk.toString()).slice(-4_000_000);
  }

  send(command: InstanceCommand): Promise<unknown> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return Promise.reject(new Error(`${this.name} is not running: ${this.stderr}`));
    }
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.child.send({ seq, command });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.send({ cmd: 'close' }).catch(() => undefined);
    await exited;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }
}

/** Retries an assertion until it passes or the time is up (then its last failure is thrown). */
export async function eventually<T>(assertion: () => Promise<T> | T, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
