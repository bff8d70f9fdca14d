import { createClient } from 'redis';
import { createTransport } from '../../lib/create-transport.js';
import { resolveEventBusOptions, type EventBusModuleOptions, type EventTransport, type RedisTransport } from '../../lib/index.js';
import { RedisServer } from '../support/redis-server.js';
import { expectOutageInStatus } from '../support/outage-status.js';
import { describeTransportConformance } from './transport-conformance.js';
import { WINDOW_SLICES } from '../../lib/transport/redis/redis-scripts.js';

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

describe('Redis Streams: publishes with the duplicate window', () => {
  const open = async (stream: string) => {
    const transport = create({ transport: 'redis', instanceId: `dup-${stream}`, redis: { url: server.url, stream } });
    await transport.connect();
    return transport;
  };
  const body = (n: number) => Buffer.from(JSON.stringify({ n }));

  it('stores a burst in order, each id once, however many script calls it takes', async () => {
    const transport = await open('BURST');
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      // 600 publishes in one turn (more than one batch); every tenth repeats the id before it.
      const ids = Array.from({ length: 600 }, (_, i) => `e${i % 10 === 9 ? i - 1 : i}`);
      await Promise.all(ids.map((id, i) => transport.publish('events.domain.Burst', body(i), id)));
      const entries = (await client.xRange('BURST', '-', '+')) ?? [];
      expect(entries.map((e) => e.message.id)).toEqual([...new Set(ids)]);
    } finally {
      await client.quit();
      await transport.close();
    }
  });

  it('appends ids the bus made without looking them up, in publish order among given ones, which it still stores once', async () => {
    const transport = await open('NEWIDS');
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      // One turn: ids the bus made and given ones interleaved, the given ones sent twice (a re-send).
      const publishes = Array.from({ length: 40 }, (_, i) => ({ id: `n${i}`, newId: i % 10 < 7 }));
      const sent = [...publishes, ...publishes.filter((p) => !p.newId)];
      await Promise.all(sent.map(({ id, newId }, i) => transport.publish('events.domain.NewIds', body(i), id, undefined, newId)));
      const entries = (await client.xRange('NEWIDS', '-', '+')) ?? [];
      expect(entries.map((e) => e.message.id)).toEqual(publishes.map((p) => p.id));
      expect(entries.map((e) => JSON.parse(e.message.data).n)).toEqual(publishes.map((_, i) => i));
      // Nothing of theirs is kept in the window: only the given ids are.
      const kept = (await Promise.all((await client.keys('NEWIDS:published:*')).map((key) => client.hKeys(key)))).flat();
      expect(kept.sort()).toEqual(publishes.filter((p) => !p.newId).map((p) => p.id).sort());
    } finally {
      await client.quit();
      await transport.close();
    }
  });

  it.each([
    ['given ids (the script)', false],
    ['ids the bus made (a transaction)', true],
  ])('rejects every publish of a call Redis refused, and forgets their ids: %s', async (_kind, newId) => {
    const transport = await open(`REFUSED${Number(newId)}`);
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      await client.set(`REFUSED${Number(newId)}`, 'not a stream');
      const refused = await Promise.allSettled(['r1', 'r2', 'r3'].map((id, i) => transport.publish('events.domain.Refused', body(i), id, undefined, newId)));
      for (const outcome of refused) expect(outcome).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('WRONGTYPE') } });
      await client.del(`REFUSED${Number(newId)}`);
      // Sent again as a re-send is (the same ids, given): stored now.
      await Promise.all(['r1', 'r2', 'r3'].map((id, i) => transport.publish('events.domain.Refused', body(i), id)));
      expect(((await client.xRange(`REFUSED${Number(newId)}`, '-', '+')) ?? []).map((e) => e.message.id)).toEqual(['r1', 'r2', 'r3']);
    } finally {
      await client.quit();
      await transport.close();
    }
  });

  it('remembers an id for the whole window, across its slices, then forgets it: the slices stay bounded', async () => {
    const windowMs = 1_000;
    const transport = create({ transport: 'redis', instanceId: 'dup-window', redis: { url: server.url, stream: 'WINDOW', duplicateWindowMs: windowMs, publishTimeoutMs: 500 } });
    await transport.connect();
    const client = createClient({ url: server.url });
    await client.connect();
    const stored = async () => ((await client.xRange('WINDOW', '-', '+')) ?? []).map((e) => e.message.id);
    try {
      await transport.publish('events.domain.Window', body(0), 'w1');
      const first = Date.now();
      // Re-published through most of the window (and so through several of its slices): stored once.
      while (Date.now() - first < 0.7 * windowMs) {
        await transport.publish('events.domain.Window', body(1), 'w1');
        await transport.publish('events.domain.Window', body(2), `other-${Date.now()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect((await stored()).filter((id) => id === 'w1')).toHaveLength(1);
      // An id is forgotten at most a slice after its window: then it is stored again.
      await new Promise((resolve) => setTimeout(resolve, first + 1.25 * windowMs + 150 - Date.now()));
      await transport.publish('events.domain.Window', body(3), 'w1');
      expect((await stored()).filter((id) => id === 'w1')).toHaveLength(2);
      // The current slice and WINDOW_SLICES before it, at most one more on its way out.
      expect((await client.keys('WINDOW:published:*')).length).toBeLessThanOrEqual(WINDOW_SLICES + 2);
    } finally {
      await client.quit();
      await transport.close();
    }
  }, 10_000);
});

describe('Redis Streams: status() through an outage', () => {
  it('says since when the connection is down, and the last error with its time; then since when it is back', async () => {
    await expectOutageInStatus(Number(new URL(server.url).port), (port) =>
      create({ transport: 'redis', instanceId: 'outage', redis: { url: `redis://127.0.0.1:${port}` } }),
    );
  }, 30_000);
});
