import { NatsServer } from '../support/nats-server.js';
import { ChildProcessInstance } from '../support/instances.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server.dispose());

describeEventBusBehaviour('JetStream (instances as separate processes)', (name, options = {}) =>
  ChildProcessInstance.start(name, {
    EVENT_BUS_TRANSPORT: 'jetstream',
    NATS_URL: server.url,
    EVENT_BUS_RETRY_INITIAL_DELAY_MS: '10',
    EVENT_BUS_RETRY_ATTEMPTS: '2',
    FIXTURE_IMPORT_CQRS: String(options.importCqrs ?? true),
    ...(options.bootPublishId ? { FIXTURE_BOOT_PUBLISH: options.bootPublishId } : {}),
  }),
  { failingHandlerRuns: 2 },
);
