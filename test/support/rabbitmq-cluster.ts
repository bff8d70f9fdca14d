import { InstanceCluster } from './instance-cluster.js';
import { RabbitMqServer, type RabbitMqServerOptions } from './rabbitmq-server.js';

/** A RabbitMQ node of the test's own and application instances (separate processes) on EVENT_BUS_TRANSPORT=rabbitmq. */
export class RabbitMqCluster extends InstanceCluster<RabbitMqServer> {
  static async start(env: Record<string, string> = {}, server: RabbitMqServerOptions = {}): Promise<RabbitMqCluster> {
    const rabbitmq = await RabbitMqServer.start(server);
    const reconnect = { RABBITMQ_RECONNECT_DELAY_MS: '100', RABBITMQ_RECONNECT_MAX_DELAY_MS: '1000' };
    return new RabbitMqCluster(rabbitmq, { EVENT_BUS_TRANSPORT: 'rabbitmq', RABBITMQ_URL: rabbitmq.url, ...reconnect, ...env });
  }
}
