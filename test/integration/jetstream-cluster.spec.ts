import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HandlerRecord, PublishOutcome } from '../support/instance-protocol.js';
import { ChildProcessInstance, eventually } from '../support/instances.js';
import { JetStreamCluster } from '../support/jetstream-cluster.js';
import { ids } from '../support/records.js';

const STREAM = 'DOMAIN_EVENTS';
const DEADLINE_MS = 30_000;
const WINDOW = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the JetStream transport adds to status(): the stream's leadership as this instance sees it. */
interface StreamStatus {
  name: string;
  leaderless: boolean;
  leaderlessSince?: string;
}
const streamStatus = async (instance: ChildProcessInstance) =>
  ((await instance.status()).transport as unknown as { stream?: StreamStatus }).stream;

/**
 * A real 3-node JetStream cluster started by the test, with three application instances as separate
 * processes, each listing every node (in another order), and an R3 stream. The group handler
 * `group:billing` runs on one of them per event.
 */
describe('JetStream on a 3-node cluster: publishes and consumers ride through leader elections', () => {
  let cluster: JetStreamCluster;
  let recordDir: string;
  let instances: ChildProcessInstance[] = [];

  const fileRecords = (name: string): HandlerRecord[] =>
    readFileSync(join(recordDir, `${name}.jsonl`), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  /** Every id the billing group handled, duplicates kept. */
  const billed = () => instances.flatMap((i) => fileRecords(i.name).filter((r) => r.handler === 'group:billing').map((r) => r.eventId));

  beforeEach(async () => {
    cluster = await JetStreamCluster.start(3);
    recordDir = mkdtempSync(join(tmpdir(), 'cluster-records-'));
    const urls = cluster.urls;
    const starting = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        ChildProcessInstance.start(`m${i}`, {
          EVENT_BUS_TRANSPORT: 'jetstream',
          NATS_URL: [...urls.slice(i), ...urls.slice(0, i)].join(','),
          NATS_RECONNECT_TIME_WAIT_MS: '100',
          EVENT_BUS_STREAM_REPLICAS: '3',
          EVENT_BUS_PUBLISH_TIMEOUT_MS: String(DEADLINE_MS),
          FIXTURE_RECORD_FILE: join(recordDir, `m${i}.jsonl`),
        }),
      ),
    );
    // Those that started are closed after the test, whatever happened to the others.
    instances = starting.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    for (const s of starting) if (s.status === 'rejected') throw s.reason;
    await cluster.waitForCurrentReplicas(STREAM, 3);
  }, 60_000);

  afterEach(async () => {
    await Promise.all(instances.map((i) => i.close()));
    await cluster?.dispose();
    rmSync(recordDir, { recursive: true, force: true });
  }, 60_000);

  /** Every publish resolved (none rejected, let alone before the deadline), and the group handled each at least once. */
  async function expectAllStoredAndHandled(outcomes: PublishOutcome[], expected: number): Promise<void> {
    const rejected = outcomes.filter((o) => !o.ok);
    expect(rejected.filter((o) => o.ms < DEADLINE_MS)).toEqual([]);
    expect(rejected).toEqual([]);
    expect(outcomes).toHaveLength(expected);
    const acked = outcomes.filter((o) => o.ok).map((o) => o.id);
    await eventually(() => {
      const handled = new Set(billed());
      expect(acked.filter((id) => !handled.has(id))).toEqual([]);
    }, 60_000);
    // At least once, and not much more: only a handler whose ack was never confirmed runs again.
    expect(billed().length - new Set(billed()).size).toBeLessThan(WINDOW);
  }

  it('kill -9 of the stream leader mid-stream, then its restart: every publish resolves and its event is handled', async () => {
    const publisher = instances[0]!;
    const events = ids('kill', 3_000);
    const outcomes: PublishOutcome[] = [];
    let killed: Awaited<ReturnType<JetStreamCluster['streamLeader']>>;
    let watching: Promise<StreamStatus> | undefined;
    for (let w = 0; w < events.length; w += WINDOW) {
      const window = publisher.send({ cmd: 'publishSettled', type: 'OrderPlaced', ids: events.slice(w, w + WINDOW) }) as Promise<PublishOutcome[]>;
      if (w === 1_200) {
        // The leader dies with this window in flight; meanwhile the publisher's status says the stream has none.
        killed = await cluster.streamLeader(STREAM);
        await killed!.kill();
        watching = eventually(async () => {
          const stream = await streamStatus(publisher);
          expect(stream).toMatchObject({ name: STREAM, leaderless: true });
          return stream!;
        }, 20_000);
        watching.catch(() => undefined); // asserted below, once the publishes settled
      }
      outcomes.push(...(await window));
    }
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const leaderless = await watching!;
    expect(Number.isNaN(Date.parse(leaderless.leaderlessSince!))).toBe(false);
    await cluster.waitForStreamLeader(STREAM, { not: killed! });
    await killed!.restart();
    await cluster.waitForCurrentReplicas(STREAM, 3);
    await expectAllStoredAndHandled(outcomes, events.length);
    // Led again, by someone: the status says so.
    await eventually(async () => expect(await streamStatus(publisher)).toMatchObject({ leaderless: false }));
    // The group goes on after the elections: a new event is handled.
    await publisher.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['after-kill-0'] });
    await eventually(() => expect(billed()).toContain('after-kill-0'), 30_000);
  }, 180_000);

  it('rolling restart of all three nodes one by one (SIGTERM): no publish is rejected, every event is handled', async () => {
    const publisher = instances[1]!;
    const outcomes: PublishOutcome[] = [];
    let stop = false;
    let sent = 0;
    const publishing = (async () => {
      while (!stop) {
        const window = ids(`roll-${sent++}`, 50);
        outcomes.push(...((await publisher.send({ cmd: 'publishSettled', type: 'OrderPlaced', ids: window })) as PublishOutcome[]));
        await sleep(20);
      }
    })();
    await eventually(() => expect(outcomes.length).toBeGreaterThan(200));
    for (const node of cluster.nodes) {
      await node.stop();
      await sleep(500);
      await node.restart();
      await cluster.waitForCurrentReplicas(STREAM, 3, { timeoutMs: 60_000 });
    }
    const afterRoll = outcomes.length;
    await eventually(() => expect(outcomes.length).toBeGreaterThan(afterRoll + 200), 60_000);
    stop = true;
    await publishing;
    await expectAllStoredAndHandled(outcomes, sent * 50);
  }, 180_000);
});
