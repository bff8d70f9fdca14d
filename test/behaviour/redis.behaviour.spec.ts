import { RedisCluster } from '../support/redis-cluster.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start({ EVENT_BUS_RETRY_INITIAL_DELAY_MS: '10', EVENT_BUS_RETRY_ATTEMPTS: '2' });
});
afterAll(() => cluster.dispose());

describeEventBusBehaviour('Redis Streams (instances as separate processes)', (name, options) => cluster.instance(name, {}, options), {
  failingHandlerRuns: 2,
});
