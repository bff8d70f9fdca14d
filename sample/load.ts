import { NatsServer, freePort } from '../test/support/nats-server.js';
import { RabbitMqServer } from '../test/support/rabbitmq-server.js';
import { RedisServer } from '../test/support/redis-server.js';
import { SampleProcess } from './sample-process.js';
import { WsPlayer, type ServerMessage } from './ws-player.js';

/**
 * `npm run sample:load`: PLAYERS WebSocket players (1,000) across INSTANCES sample instances (2) on
 * a broker of its own (EVENT_BUS_TRANSPORT: nats by default, or jetstream, redis, rabbitmq), in ROOMS rooms (100); then ROUNDS rounds (20) in each of which MOVERS
 * players (50) move to another room. For every room event, each player that stayed in the room
 * must receive it: latency is publish (the event's `at`, set by the publishing instance) to receipt
 * by the client, and what has not arrived within 10 s of its round is lost.
 */
const PLAYERS = Number(process.env.PLAYERS ?? 1_000);
const INSTANCES = Number(process.env.INSTANCES ?? 2);
const ROOMS = Number(process.env.ROOMS ?? 100);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const MOVERS = Number(process.env.MOVERS ?? 50);
const ROUND_TIMEOUT_MS = 10_000;

interface Expectation {
  readonly player: WsPlayer;
  readonly type: 'entered' | 'left';
  readonly mover: string;
  readonly room: string;
  /** Only messages from this index of the player's inbox count (those of the current round). */
  readonly from: number;
}

const room = (n: number) => `room-${n}`;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function arrival({ player, type, mover, room, from }: Expectation): number | undefined {
  for (let i = from; i < player.messages.length; i++) {
    const m: ServerMessage = player.messages[i];
    if (m.type === type && m.player === mover && m.room === room) return player.receivedAt[i] - Date.parse(m.at!);
  }
  return undefined;
}

async function settle(expectations: Expectation[]): Promise<{ latencies: number[]; lost: number }> {
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  let pending = expectations;
  const latencies: number[] = [];
  while (pending.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    pending = pending.filter((e) => {
      const latency = arrival(e);
      if (latency === undefined) return true;
      latencies.push(latency);
      return false;
    });
  }
  return { latencies, lost: pending.length };
}

/** A broker started for this run only, and what the instances are told about it. */
interface Broker {
  readonly env: Record<string, string>;
  dispose(): Promise<void>;
}

/** The broker each transport needs. */
const brokers: Record<string, () => Promise<Broker>> = {
  nats: async () => {
    const nats = await NatsServer.start();
    return { env: { NATS_URL: nats.url }, dispose: () => nats.dispose() };
  },
  redis: async () => {
    const redis = await RedisServer.start();
    return { env: { REDIS_URL: redis.url }, dispose: () => redis.dispose() };
  },
  rabbitmq: async () => {
    const rabbitmq = await RabbitMqServer.start();
    return { env: { RABBITMQ_URL: rabbitmq.url }, dispose: () => rabbitmq.dispose() };
  },
};
brokers.jetstream = brokers.nats;

const transport = process.env.EVENT_BUS_TRANSPORT ?? 'nats';
if (!brokers[transport]) throw new Error(`EVENT_BUS_TRANSPORT: sample:load runs on ${Object.keys(brokers).join(', ')}, got ${JSON.stringify(transport)}`);
const server = await brokers[transport]();
const env = { EVENT_BUS_TRANSPORT: transport, ...server.env };
const instances = await Promise.all(Array.from({ length: INSTANCES }, async () => SampleProcess.start({ port: await freePort(), env })));
const players: WsPlayer[] = [];
try {
  for (let i = 0; i < PLAYERS; i++) players.push(await WsPlayer.connect(`p${i}`, instances[i % INSTANCES].port));
  const roomOf = new Map<WsPlayer, string>();
  const members = (r: string) => players.filter((p) => roomOf.get(p) === r);

  // Everyone enters a room; what each room's earlier members see of it counts too.
  const joining: Expectation[] = [];
  for (const [i, p] of players.entries()) {
    const target = room(i % ROOMS);
    for (const member of [...members(target), p]) joining.push({ player: member, type: 'entered', mover: p.name, room: target, from: 0 });
    roomOf.set(p, target);
    p.join(target);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 10));
  }
  const joined = await settle(joining);
  console.log(`${PLAYERS} players joined ${ROOMS} rooms on ${INSTANCES} instances (${joined.lost} entries lost)`);

  const latencies: number[] = [];
  let expected = 0;
  let lost = joined.lost;
  for (let round = 0; round < ROUNDS; round++) {
    const movers = new Set<WsPlayer>();
    while (movers.size < MOVERS) movers.add(players[Math.floor(Math.random() * players.length)]);
    const expectations: Expectation[] = [];
    for (const mover of movers) {
      const from = roomOf.get(mover)!;
      let to = from;
      while (to === from) to = room(Math.floor(Math.random() * ROOMS));
      const stayers = (r: string) => members(r).filter((p) => !movers.has(p));
      for (const p of stayers(from)) expectations.push({ player: p, type: 'left', mover: mover.name, room: from, from: p.messages.length });
      for (const p of [...stayers(to), mover]) expectations.push({ player: p, type: 'entered', mover: mover.name, room: to, from: p.messages.length });
      roomOf.set(mover, to);
    }
    for (const mover of movers) mover.join(roomOf.get(mover)!);
    const result = await settle(expectations);
    latencies.push(...result.latencies);
    expected += expectations.length;
    lost += result.lost;
  }

  latencies.sort((x, y) => x - y);
  const report = {
    transport,
    players: PLAYERS,
    instances: INSTANCES,
    rooms: ROOMS,
    rounds: ROUNDS,
    moversPerRound: MOVERS,
    deliveries: expected,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies[latencies.length - 1],
    lost,
  };
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = lost === 0 ? 0 : 1;
} finally {
  await Promise.all(players.map((p) => p.close()));
  await Promise.all(instances.map((i) => i.stop()));
  await server.dispose();
}
