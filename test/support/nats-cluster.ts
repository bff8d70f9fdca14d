import { InstanceCluster } from './instance-cluster.js';
import { NatsServer } from './nats-server.js';

/** A nats-server of the test's own and application instances (separate processes) started against it. */
export class NatsCluster extends InstanceCluster<NatsServer> {
  static async start(transport: 'nats' | 'jetstream', env: Record<string, string> = {}): Promise<NatsCluster> {
    const server = await NatsServer.start();
    return new NatsCluster(server, { EVENT_BUS_TRANSPORT: transport, NATS_URL: server.url, NATS_RECONNECT_TIME_WAIT_MS: '100', ...env });
  }
}
