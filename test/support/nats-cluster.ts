import type { InstanceAppOptions } from '../fixtures/instance-app.js';
import { ChildProcessInstance } from './instances.js';
import { NatsServer } from './nats-server.js';

/** A nats-server of the test's own and application instances (separate processes) started against it. */
export class NatsCluster {
  private readonly running: ChildProcessInstance[] = [];

  private constructor(
    readonly server: NatsServer,
    private readonly env: Record<string, string>,
  ) {}

  static async start(transport: 'nats' | 'jetstream', env: Record<string, string> = {}): Promise<NatsCluster> {
    const server = await NatsServer.start();
    return new NatsCluster(server, { EVENT_BUS_TRANSPORT: transport, NATS_URL: server.url, NATS_RECONNECT_TIME_WAIT_MS: '100', ...env });
  }

  async instance(name: string, env: Record<string, string> = {}, { importCqrs = true, bootPublishId, chain }: InstanceAppOptions = {}): Promise<ChildProcessInstance> {
    const instance = await ChildProcessInstance.start(name, {
      ...this.env,
      FIXTURE_IMPORT_CQRS: String(importCqrs),
      ...(bootPublishId ? { FIXTURE_BOOT_PUBLISH: bootPublishId } : {}),
      ...(chain ? { FIXTURE_CHAIN: 'true' } : {}),
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
