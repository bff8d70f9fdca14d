import { RabbitMqCluster } from '../support/rabbitmq-cluster.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let cluster: RabbitMqCluster;
beforeAll(async () => {
  cluster = await RabbitMqCluster.start({ EVENT_BUS_RETRY_INITIAL_DELAY_MS: '10', EVENT_BUS_RETRY_ATTEMPTS: '2' });
}, 120_000);
afterAll(() => cluster?.dispose(), 60_000);

describeEventBusBehaviour('RabbitMQ (instances as separate processes)', (name, options) => cluster.instance(name, {}, options), {
  failingHandlerRuns: 2,
});
