import type { InstanceAppOptions } from '../fixtures/instance-app.js';
import type { HandlerRecord } from '../support/instance-protocol.js';
import { eventually, type Instance } from '../support/instances.js';
import { ids, idsOf, sorted } from '../support/records.js';

/** Starts one instance of the cluster under test; every instance of one suite shares a broker. */
export type StartInstance = (name: string, options?: Omit<InstanceAppOptions, 'bus'>) => Promise<Instance>;

/** Event ids a handler saw for events whose id starts with `prefix`, sorted (duplicates kept). */
const seen = (records: HandlerRecord[], handler: string, prefix: string): string[] => sorted(idsOf(records, handler, prefix));

/**
 * The behaviour every transport must give the application: run against the memory transport
 * (instances in one process) and NATS (instances as separate processes).
 */
export function describeEventBusBehaviour(
  name: string,
  startInstance: StartInstance,
  /** How often a failing handler runs per event: 1, or the retry attempts of a durable transport. */
  { failingHandlerRuns = 1 } = {},
): void {
  describe(`event bus behaviour over ${name}`, () => {
    let cluster: Instance[] = [];
    let a: Instance, b: Instance, c: Instance;
    let sentinels = 0;

    beforeAll(async () => {
      cluster = await Promise.all(['a', 'b', 'c'].map((n) => startInstance(n)));
      [a, b, c] = cluster;
    });

    afterAll(() => Promise.all(cluster.map((i) => i.close())));

    /** Every instance publishes a tick and waits until every instance saw all of them: what was sent before has arrived. */
    async function settle(instances = cluster): Promise<void> {
      const tick = `settle${sentinels++}`;
      await Promise.all(instances.map((i) => i.send({ cmd: 'publish', type: 'GameTick', ids: [`${tick}-${i.name}`] })));
      await eventually(async () => {
        for (const i of instances) expect(seen(await i.records(), 'controller:tick', tick)).toHaveLength(instances.length);
      });
    }

    async function allRecords(instances = cluster): Promise<HandlerRecord[][]> {
      return Promise.all(instances.map((i) => i.records()));
    }

    it('runs each handler once per event on every instance, publisher included, with rebuilt class instances', async () => {
      const room1 = ids('enter', 10);
      const room2 = ids('enter2', 10);
      await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: room1, room: 'room-1' });
      await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: room2, room: 'room-2' });
      const aId = (await a.status()).instanceId;
      await eventually(async () => {
        for (const records of await allRecords()) expect(seen(records, 'enter:all', 'enter')).toHaveLength(10);
      });
      await settle();
      for (const [index, records] of (await allRecords()).entries()) {
        expect(seen(records, 'enter:all', 'enter')).toEqual(sorted(room1));
        expect(seen(records, 'enter:all', 'enter2')).toEqual(sorted(room2));
        expect(seen(records, 'enter:room-1', 'enter')).toEqual(sorted(room1));
        expect(seen(records, 'enter:room-1', 'enter2')).toEqual([]);
        expect(seen(records, 'pattern:>', 'enter')).toEqual(sorted(room1));
        expect(seen(records, 'pattern:*.room-1', 'enter')).toEqual(sorted(room1));
        expect(seen(records, 'pattern:*.room-1', 'enter2')).toEqual([]);
        expect(seen(records, 'pattern:*', 'enter')).toEqual([]);
        const mine = records.filter((r) => r.eventId.startsWith('enter'));
        expect(mine.every((r) => r.intact)).toBe(true);
        expect(mine.every((r) => r.origin === aId && r.local === (index === 0))).toBe(true);
        const first = mine.find((r) => r.eventId === 'enter-0' && r.handler === 'enter:all')!;
        expect(first).toMatchObject({ type: 'PlayerEnteredRoom', key: 'room-1', subject: 'events.domain.PlayerEnteredRoom.room-1' });
      }
    });

    it('delivers unkeyed events to controllers, CQRS handlers and "*" patterns; failing handlers stop nothing', async () => {
      const ticks = ids('tick', 5);
      const before = await Promise.all(cluster.map(async (i) => (await i.status()).stats.handlerErrors));
      await b.send({ cmd: 'publish', type: 'GameTick', ids: ticks });
      await eventually(async () => {
        for (const records of await allRecords()) expect(seen(records, 'cqrs', 'tick')).toHaveLength(5);
      });
      const retried = ticks.flatMap((id) => Array<string>(failingHandlerRuns).fill(id)).sort();
      // A redelivery after a failure may come after later events (it waits for its retry delay).
      await eventually(async () => {
        for (const records of await allRecords()) for (const handler of ['throws', 'rejects']) expect([handler, seen(records, handler, 'tick')]).toEqual([handler, retried]);
      });
      await settle();
      const everywhere = await allRecords();
      for (const records of everywhere) {
        // A retry runs the handler that failed, not its siblings that succeeded.
        for (const handler of ['controller:tick', 'pattern:*', 'pattern:>', 'cqrs']) {
          expect([handler, seen(records, handler, 'tick')]).toEqual([handler, ticks]);
        }
        for (const handler of ['throws', 'rejects']) expect([handler, seen(records, handler, 'tick')]).toEqual([handler, retried]);
      }
      expect(everywhere.flatMap((r) => seen(r, 'group:audit', 'tick')).sort()).toEqual(ticks);
      const after = await Promise.all(cluster.map(async (i) => (await i.status()).stats.handlerErrors));
      after.forEach((errors, i) => expect(errors - before[i]).toBeGreaterThanOrEqual(10 * failingHandlerRuns));
    });

    it('runs a group handler on exactly one instance per event, and every event somewhere', async () => {
      const orders = ids('order', 30);
      await Promise.all(cluster.map((i, n) => i.send({ cmd: 'publish', type: 'OrderPlaced', ids: orders.slice(n * 10, n * 10 + 10) })));
      await eventually(async () => {
        expect((await allRecords()).flatMap((r) => seen(r, 'group:billing', 'order'))).toHaveLength(30);
      });
      await settle();
      const everywhere = await allRecords();
      expect(everywhere.flatMap((r) => seen(r, 'group:billing', 'order')).sort()).toEqual(sorted(orders));
      expect(everywhere.flatMap((r) => seen(r, 'group:audit', 'order')).sort()).toEqual(sorted(orders));
      for (const records of everywhere) expect(seen(records, 'cqrs', 'order')).toEqual(sorted(orders));
    });

    it('distributes what goes through the CQRS EventBus: publish, publishAll and AggregateRoot.commit()', async () => {
      await c.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('viaPublish', 3), via: 'cqrs' });
      await c.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('viaAll', 3), via: 'cqrs-all' });
      await c.send({ cmd: 'publish', type: 'OrderPlaced', ids: ids('viaCommit', 3), via: 'aggregate' });
      await eventually(async () => {
        for (const records of await allRecords()) expect(seen(records, 'cqrs', 'viaCommit')).toHaveLength(3);
      });
      await settle();
      const everywhere = await allRecords();
      for (const prefix of ['viaPublish', 'viaAll', 'viaCommit']) {
        for (const records of everywhere) expect(seen(records, 'cqrs', prefix)).toEqual(ids(prefix, 3));
        expect(everywhere.flatMap((r) => seen(r, 'group:billing', prefix)).sort()).toEqual(ids(prefix, 3));
      }
    });

    it('subscribes at run time to one key, and stops on unsubscribe', async () => {
      await b.send({ cmd: 'subscribe', name: 'room7', pattern: 'PlayerEnteredRoom', key: 'room-7' });
      await a.send({ cmd: 'subscribe', name: 'room7', pattern: 'PlayerEnteredRoom', key: 'room-7' });
      await settle();
      await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: ['dyn-0'], room: 'room-7' });
      await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: ['dyn-1'], room: 'room-8' });
      await eventually(async () => expect(seen(await b.records(), 'dyn:room7', 'dyn')).toEqual(['dyn-0']));
      await b.send({ cmd: 'unsubscribe', name: 'room7' });
      await a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: ['dyn-2'], room: 'room-7' });
      await settle();
      expect(seen(await a.records(), 'dyn:room7', 'dyn')).toEqual(['dyn-0', 'dyn-2']);
      expect(seen(await b.records(), 'dyn:room7', 'dyn')).toEqual(['dyn-0']);
      expect(seen(await c.records(), 'dyn:room7', 'dyn')).toEqual([]);
      expect(seen(await b.records(), 'enter:all', 'dyn')).toEqual(['dyn-0', 'dyn-1', 'dyn-2']);
    });

    it('shares a run-time group subscription among instances', async () => {
      await Promise.all(cluster.map((i) => i.send({ cmd: 'subscribe', name: 'workers', pattern: 'OrderPlaced', group: 'workers' })));
      await settle();
      const jobs = ids('job', 12);
      await b.send({ cmd: 'publish', type: 'OrderPlaced', ids: jobs });
      await eventually(async () => expect((await allRecords()).flatMap((r) => seen(r, 'dyn:workers', 'job'))).toHaveLength(12));
      await settle();
      expect((await allRecords()).flatMap((r) => seen(r, 'dyn:workers', 'job')).sort()).toEqual(sorted(jobs));
    });

    it('carries correlation and causation across instances: what a handler, a saga or a committed aggregate publishes is caused by the handled event', async () => {
      // a publishes; only "chain" reacts, by publishing; c (and everyone) handles what it published.
      const chain = await startInstance('chain', { chain: true });
      try {
        const four = [...cluster, chain];
        await settle(four);
        await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['chain-0', 'saga-0'] });
        await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['chain-1'], correlationId: 'checkout-7' });
        const byEvent = async (instance: Instance, eventId: string) => {
          const record = (await instance.records()).find((r) => r.handler === 'pattern:>' && r.eventId === eventId);
          if (!record) throw new Error(`${instance.name} has not handled ${eventId}`);
          return record;
        };
        const [rootA, rootSaga, rootGiven] = await eventually(() => Promise.all(['chain-0', 'saga-0', 'chain-1'].map((id) => byEvent(c, id))));
        const [chained, committed, chainedGiven] = await eventually(() =>
          Promise.all(['chained-chain-0', 'commit-saga-0', 'chained-chain-1'].map((id) => byEvent(c, id))),
        );
        // A publish outside handling starts a flow of its own, unless given one.
        expect([rootA.correlationId, rootA.causationId]).toEqual([rootA.id, undefined]);
        expect([rootGiven.correlationId, rootGiven.causationId]).toEqual(['checkout-7', undefined]);
        // DomainEventBus.publish in an @OnDomainEvent handler (after an await).
        expect(chained).toMatchObject({ causationId: rootA.id, correlationId: rootA.id });
        expect(chainedGiven).toMatchObject({ causationId: rootGiven.id, correlationId: 'checkout-7' });
        // A saga's command handler committing an aggregate (the CQRS EventBus).
        expect(committed).toMatchObject({ causationId: rootSaga.id, correlationId: rootSaga.id });
        // Every instance sees the same ids.
        for (const instance of [a, b, chain]) {
          expect(await eventually(() => byEvent(instance, 'chained-chain-0'))).toMatchObject({ id: chained.id, causationId: rootA.id, correlationId: rootA.id });
        }
      } finally {
        await chain.close();
      }
    });

    it('rejects publishing a class without @DomainEvent', async () => {
      expect(await a.send({ cmd: 'publishUnregistered' })).toMatch(/^UnregisteredEventError: LocalOnlyEvent is not a domain event/);
    });

    it('works for an instance that does not import CqrsModule, and keeps events it publishes while bootstrapping', async () => {
      const d = await startInstance('d', { importCqrs: false, bootPublishId: 'boot-0' });
      try {
        const four = [...cluster, d];
        await eventually(async () => {
          for (const records of await allRecords(four)) expect(seen(records, 'cqrs', 'boot')).toEqual(['boot-0']);
        });
        await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['fromA-0'] });
        await d.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['fromD-0'], via: 'cqrs' });
        await settle(four);
        const everywhere = await allRecords(four);
        for (const records of everywhere) {
          expect(seen(records, 'cqrs', 'boot')).toEqual(['boot-0']);
          expect(seen(records, 'cqrs', 'fromA')).toEqual(['fromA-0']);
          expect(seen(records, 'cqrs', 'fromD')).toEqual(['fromD-0']);
        }
        expect(everywhere.flatMap((r) => seen(r, 'group:billing', 'boot'))).toEqual(['boot-0']);
      } finally {
        await d.close();
      }
    });
  });
}
