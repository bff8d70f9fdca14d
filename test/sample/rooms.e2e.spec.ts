import { join } from 'node:path';
import { SampleProcess } from '../../sample/sample-process.js';
import { WsPlayer, type ServerMessage } from '../../sample/ws-player.js';
import { eventually } from '../support/instances.js';
import { freePort, NatsServer } from '../support/nats-server.js';

const SAMPLE_MAIN = join(process.cwd(), '.test-build/sample/main.js');
const TICK_MS = 600;

const entered = (player: string, room: string) => (m: ServerMessage) => m.type === 'entered' && m.player === player && m.room === room;
const left = (player: string, room: string) => (m: ServerMessage) => m.type === 'left' && m.player === player && m.room === room;

describe('sample: the rooms server on two instances over NATS', () => {
  let server: NatsServer;
  let a: SampleProcess;
  let b: SampleProcess;
  const players: WsPlayer[] = [];

  const player = async (name: string, instance: SampleProcess, room?: string) => {
    const p = await WsPlayer.connect(name, instance.port);
    players.push(p);
    if (room) {
      p.join(room);
      await p.waitFor(entered(name, room));
    }
    return p;
  };

  beforeAll(async () => {
    server = await NatsServer.start();
    const env = { EVENT_BUS_TRANSPORT: 'nats', NATS_URL: server.url, TICK_INTERVAL_MS: String(TICK_MS) };
    [a, b] = await Promise.all([SampleProcess.start({ port: await freePort(), env, main: SAMPLE_MAIN }), SampleProcess.start({ port: await freePort(), env, main: SAMPLE_MAIN })]);
  });

  afterAll(async () => {
    await Promise.all(players.map((p) => p.close()));
    await Promise.all([a?.stop(), b?.stop()]);
    await server?.dispose();
  });

  it('shows a player entering a room to that room on both instances, and to no other room', async () => {
    const a1 = await player('a1', a, 'arkham-1');
    const b1 = await player('b1', b, 'arkham-1');
    const b2 = await player('b2', b, 'dunwich-2');
    const a2 = await player('a2', a);
    a2.join('arkham-1');
    for (const p of [a1, b1, a2]) await p.waitFor(entered('a2', 'arkham-1'));
    // b2 is on the same instance as b1 but in another room: it must see nothing of arkham-1 after its own entry.
    const sentinel = await player('sentinel', a);
    sentinel.join('dunwich-2');
    await b2.waitFor(entered('sentinel', 'dunwich-2'));
    expect(b2.messages.filter((m) => m.room === 'arkham-1')).toEqual([]);
    expect(b1.messages.filter((m) => m.type === 'entered' && m.player === 'a2')).toHaveLength(1);
  });

  it('moves a player between rooms, and cleans up subscriptions on leave and disconnect', async () => {
    const mover = await player('mover', b, 'innsmouth-1');
    const watcherA = await player('watcherA', a, 'innsmouth-1');
    await mover.waitFor(entered('watcherA', 'innsmouth-1'));
    mover.join('innsmouth-2');
    await watcherA.waitFor(left('mover', 'innsmouth-1'));
    await mover.waitFor(entered('mover', 'innsmouth-2'));
    await eventually(async () => expect((await b.state()).localRooms).not.toHaveProperty('innsmouth-1'));
    expect((await b.state()).localRooms['innsmouth-2']).toEqual(['mover']);

    mover.leave();
    await eventually(async () => expect((await b.state()).localRooms).not.toHaveProperty('innsmouth-2'));
    await watcherA.close();
    await eventually(async () => expect((await a.state()).localRooms).not.toHaveProperty('innsmouth-1'));
    // Players per room across the cluster, from the heartbeats.
    await eventually(async () => expect((await a.state()).rooms['arkham-1']).toEqual(['a1', 'a2', 'b1']));
  });

  it('sends every tick once to every client, from one instance', async () => {
    const [ta, tb] = [await player('tickA', a), await player('tickB', b)];
    await ta.waitFor((m) => m.type === 'tick');
    const first = ta.messages.find((m) => m.type === 'tick')!.tick!;
    await ta.waitFor((m) => m.type === 'tick' && m.tick! >= first + 3, 10 * TICK_MS);
    await tb.waitFor((m) => m.type === 'tick' && m.tick! >= first + 3, 10 * TICK_MS);
    for (const p of [ta, tb]) {
      const ticks = p.messages.filter((m) => m.type === 'tick').map((m) => m.tick!);
      expect(new Set(ticks).size).toBe(ticks.length);
      expect(ticks.filter((t) => t >= first && t <= first + 3)).toEqual([first, first + 1, first + 2, first + 3]);
    }
    expect((await a.state()).instances).toHaveLength(2);
  });
});
