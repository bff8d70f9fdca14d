import { NatsServer } from '../support/nats-server.js';
import { ChildProcessInstance } from '../support/instances.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server.dispose());

describeEventBusBehaviour('core NATS (instances as separate processes)', (name, options = {}) =>
  ChildProcessInstance.start(name, {
    EVENT_BUS_TRANSPORT: 'nats',
    NATS_URL: server.url,
    FIXTURE_IMPORT_CQRS: String(options.importCqrs ?? true),
    ...(options.bootPublishId ? { FIXTURE_BOOT_PUBLISH: options.bootPublishId } : {}),
  }),
);
