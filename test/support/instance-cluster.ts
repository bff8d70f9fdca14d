import type { InstanceAppOptions } from '../fixtures/instance-app.js';
import { ChildProcessInstance } from './instances.js';

/** A broker of the test's own, and application instances (separate processes) started against it. */
export class InstanceCluster<Server extends { dispose(): Promise<void> }> {
  private readonly running: ChildProcessInstance[] = [];

  constructor(
    readonly server: Server,
    /** The environment every instance gets: the transport and how to reach the broker. */
    private readonly env: Record<string, string>,
  ) {}

  async instance(name: string, env: Record<string, string> = {}, { importCqrs = true, bootPublishId }: InstanceAppOptions = {}): Promise<ChildProcessInstance> {
    const instance = await ChildProcessInstance.start(name, {
      ...this.env,
      FIXTURE_IMPORT_CQRS: String(importCqrs),
      ...(bootPublishId ? { FIXTURE_BOOT_PUBLISH: bootPublishId } : {}),
      ...env,
    });
    this.running.push(instance);
    return instance;
  }

  /** Instances as this cluster would start them, expected to fail at startup. */
  failToStart(env: Record<string, string>): ReturnType<typeof ChildProcessInstance.failToStart> {
    return ChildProcessInstance.failToStart({ ...this.env, ...env });
  }

  async dispose(): Promise<void> {
    await Promise.all(this.running.splice(0).map((i) => i.close()));
    await this.server.dispose();
  }
}
