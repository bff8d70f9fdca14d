import type { InstanceAppOptions } from '../fixtures/instance-app.js';
import { ChildProcessInstance } from './instances.js';
import { RabbitMqServer, type RabbitMqServerOptions } from './rabbitmq-server.js';

/** A RabbitMQ node of the test's own and application instances (separate processes) started against it. */
export class RabbitMqCluster {
  private readonly running: ChildProcessInstance[] = [];

  private constructor(
    readonly server: RabbitMqServer,
    private readonly env: Record<string, string>,
  ) {}

  static async start(env: Record<string, string> = {}, options?: RabbitMqServerOptions): Promise<RabbitMqCluster> {
    const server = await RabbitMqServer.start(options);
    return new RabbitMqCluster(server, { EVENT_BUS_TRANSPORT: 'rabbitmq', RABBITMQ_URL: server.url, RABBITMQ_RECONNECT_DELAY_MS: '100', RABBITMQ_RECONNECT_MAX_DELAY_MS: '1000', ...env });
  }

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

  /** Closes the instances started so far; the node goes on. */
  async closeInstances(): Promise<void> {
    await Promise.all(this.running.splice(0).map((i) => i.close()));
  }

  async dispose(): Promise<void> {
    await this.closeInstances();
    await this.server.dispose();
  }
}
