import { spawn, type ChildProcess } from 'node:child_process';

export interface SampleProcessOptions {
  port: number;
  env?: Record<string, string>;
  /** The compiled entry point (main.js beside this module by default). */
  main?: string;
  /** Prefix each output line with this name on our stdout; silent when absent. */
  echo?: string;
}

/** One sample instance as its own process: started, awaited until it serves, stopped with SIGTERM. */
export class SampleProcess {
  private constructor(
    readonly port: number,
    readonly child: ChildProcess,
  ) {}

  static async start({ port, env = {}, main = new URL('./main.js', import.meta.url).pathname, echo }: SampleProcessOptions): Promise<SampleProcess> {
    const child = spawn(process.execPath, [main], {
      env: { ...process.env, PORT: String(port), ...env },
      stdio: ['ignore', echo ? 'pipe' : 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    if (echo) {
      for (const stream of [child.stdout!, child.stderr!]) {
        stream.on('data', (chunk: Buffer) => process.stdout.write(chunk.toString().replace(/^(?=.)/gm, `[${echo}] `)));
      }
    }
    const instance = new SampleProcess(port, child);
    const deadline = Date.now() + 20_000;
    while (!(await instance.serving())) {
      if (child.exitCode !== null) throw new Error(`sample on port ${port} exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`sample on port ${port} did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return instance;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async state(): Promise<Record<string, any>> {
    const response = await fetch(`${this.url}/admin/state`);
    return response.json() as Promise<Record<string, any>>;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  private async serving(): Promise<boolean> {
    try {
      return (await fetch(`${this.url}/admin/state`)).ok;
    } catch {
      return false;
    }
  }
}
