import { NatsCluster } from '../support/nats-cluster.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let cluster: NatsCluster;
beforeAll(async () => {
  cluster = await NatsCluster.start('jetstream', { EVENT_BUS_RETRY_INITIAL_DELAY_MS: '10', EVENT_BUS_RETRY_ATTEMPTS: '2' });
});
afterAll(() => cluster.dispose());

describeEventBusBehaviour('JetStream (instances as separate processes)', (name, options) => cluster.instance(name, {}, options), {
  failingHandlerRuns: 2,
});
