import { createTransport } from '../../lib/create-transport.js';
import { resolveEventBusOptions, type EventBusModuleOptions, type EventTransport, type RedisTransport } from '../../lib/index.js';
import { RedisServer } from '../support/redis-server.js';
import { describeTransportConformance } from './transport-conformance.js';

let server: RedisServer;
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(() => server.dispose());

/** A transport as the module creates it, from options in code only. */
const create = (options: EventBusModuleOptions) => createTransport(resolveEventBusOptions(options, {}), options, {});

let instances = 0;
async function connected(count: number): Promise<EventTransport[]> {
  const transports = Array.from({ length: count }, () =>
    create({
      transport: 'redis',
      instanceId: `r${instances++}`,
      // Short enough for the durable cases: a crashed member's entries are claimed after the claim time.
      redis: { url: server.url, claimAfterMs: 1_000 },
      retry: { initialDelayMs: 20, maxDelayMs: 100 },
    }),
  );
  await Promise.all(transports.map((t) => t.connect()));
  return transports;
}

describeTransportConformance('Redis Streams', () => ({
  prefix: 'events.domain',
  echoesOwnBroadcast: true,
  durable: true,
  connect: connected,
  crash: async (transport) => (transport as RedisTransport).abort(),
  async teardown() {},
}));
