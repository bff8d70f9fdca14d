import { NatsCluster } from '../support/nats-cluster.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let cluster: NatsCluster;
beforeAll(async () => {
  cluster = await NatsCluster.start('nats');
});
afterAll(() => cluster.dispose());

describeEventBusBehaviour('core NATS (instances as separate processes)', (name, options) => cluster.instance(name, {}, options));
