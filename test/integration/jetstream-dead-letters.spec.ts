import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createTransport } from '../../lib/create-transport.js';
import { DeadLetters, resolveEventBusOptions, type DeadLetter, type EventBusModuleOptions, type EventTransport } from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { NatsServer } from '../support/nats-server.js';

const LETTERS = 3_000;
const SUBJECT = 'events.domain.Poison';
const encoder = new TextEncoder();
const body = (n: number) => encoder.encode(JSON.stringify({ n }));
const numberOf = (payload: unknown) => (JSON.parse(new TextDecoder().decode(payload as Uint8Array)) as { n: number }).n;

describe('JetStream dead letters at scale: thousands of letters paged, counted and replayed', () => {
  let server: NatsServer;
  let transport: EventTransport;
  let deadLetters: DeadLetters;
  /** What the group's handler saw, by message number; it fails until healed. */
  const handled: number[] = [];
  let healed = false;

  beforeAll(async () => {
    server = await NatsServer.start();
    const options: EventBusModuleOptions = {
      transport: 'jetstream',
      instanceId: 'dlq-scale',
      nats: { servers: server.url },
      retry: { attempts: 1 },
      jetstream: { idempotency: 'off' },
    };
    transport = createTransport(resolveEventBusOptions(options, {}), options, {});
    await transport.connect();
    deadLetters = new DeadLetters(transport);
    transport.subscribe(SUBJECT, 'poisoned', (_subject, payload) => {
      if (!healed) return Promise.reject(new Error('poisoned on purpose'));
      handled.push(numberOf(payload));
      return undefined;
    }, { attempts: 1, start: 'new', ordered: false });
    await transport.flush();
    const acks: unknown[] = [];
    for (let n = 0; n < LETTERS; n++) acks.push(transport.publish(SUBJECT, body(n), `poison-${n}`));
    await Promise.all(acks);
    await eventually(async () => expect(await deadLetters.count()).toBe(LETTERS), 60_000);
  }, 120_000);

  afterAll(async () => {
    await transport?.close();
    await server?.dispose();
  });

  it('counts them, and pages through all of them oldest first, each once, with next undefined on the last page', async () => {
    expect(await deadLetters.count()).toBe(LETTERS);
    const seen: DeadLetter[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await deadLetters.page({ after, limit: 700 });
      expect(page.letters.length).toBeLessThanOrEqual(700);
      seen.push(...page.letters);
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 100);
    expect(pages).toBe(Math.ceil(LETTERS / 700));
    expect(seen.map((l) => l.id)).toEqual(Array.from({ length: LETTERS }, (_, n) => `poison-${n}`));
    expect(new Set(seen.map((l) => l.ref)).size).toBe(LETTERS);
    expect(seen.every((l) => l.group === 'poisoned' && l.subject === SUBJECT && l.attempts === 1 && l.error.includes('poisoned on purpose'))).toBe(true);

    // A page that ends exactly at the last letter says so.
    const last = await deadLetters.page({ after: seen[LETTERS - 2]!.ref, limit: 1 });
    expect(last.letters.map((l) => l.id)).toEqual([`poison-${LETTERS - 1}`]);
    expect(last.next).toBeUndefined();
    expect(await deadLetters.page({ after: seen[LETTERS - 1]!.ref })).toEqual({ letters: [], next: undefined });
    expect((await deadLetters.list()).length).toBe(LETTERS);
  });

  it('rejects a bad page query, naming what is wrong', async () => {
    await expect(deadLetters.page({ limit: 0 })).rejects.toThrow('limit must be an integer >= 1');
    await expect(deadLetters.page({ after: 'x' })).rejects.toThrow('after must be the ref of a dead letter');
  });

  it('replays one letter by id, then all the rest: each handled once, and none left', async () => {
    healed = true;
    expect(await deadLetters.replay('poison-7')).toBe(1);
    await eventually(() => expect(handled).toEqual([7]));
    expect(await deadLetters.count()).toBe(LETTERS - 1);
    expect(await deadLetters.replayAll()).toBe(LETTERS - 1);
    await eventually(() => expect(handled.length).toBe(LETTERS), 60_000);
    expect(new Set(handled).size).toBe(LETTERS);
    expect(await deadLetters.count()).toBe(0);
    expect(await deadLetters.list()).toEqual([]);
    // The replays themselves are removed once handled: nothing is left behind in the dead-letter stream.
    const raw = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(raw);
      await eventually(async () => expect((await jsm.streams.info('DOMAIN_EVENTS_DLQ')).state.messages).toBe(0));
    } finally {
      await raw.close();
    }
  }, 120_000);
});
