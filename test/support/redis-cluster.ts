import { InstanceCluster } from './instance-cluster.js';
import { RedisServer, type RedisServerOptions } from './redis-server.js';

/** A redis-server of the test's own and application instances (separate processes) on EVENT_BUS_TRANSPORT=redis. */
export class RedisCluster extends InstanceCluster<RedisServer> {
  static async start(env: Record<string, string> = {}, server: RedisServerOptions = {}): Promise<RedisCluster> {
    const redis = await RedisServer.start(server);
    return new RedisCluster(redis, { EVENT_BUS_TRANSPORT: 'redis', REDIS_URL: redis.url, ...env });
  }
}
