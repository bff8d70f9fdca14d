import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { ChildProcessInstance, eventually } from '../support/instances.js';
import { makeTlsFiles } from '../support/tls-certificates.js';
import { NatsCluster } from '../support/nats-cluster.js';
import { freePort, NatsServer } from '../support/nats-server.js';
import { ids, idsOf as seen } from '../support/records.js';

describe('core NATS in production conditions (instances as separate processes)', () => {
  let cluster: NatsCluster;
  let server: NatsServer;
  const start = (name: string) => cluster.instance(name);

  beforeEach(async () => {
    cluster = await NatsCluster.start('nats');
    server = cluster.server;
  });

  afterEach(() => cluster.dispose());

  it('survives a server restart mid-stream: reconnects by itself and keeps delivering', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const stream = ids('stream', 300);
    const publishing = a.send({ cmd: 'publish', type: 'OrderPlaced', ids: stream, intervalMs: 10 });
    await eventually(async () => expect(seen(await b.records(), 'cqrs', 'stream').length).toBeGreaterThan(20));
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await publishing;
    await eventually(async () => {
      for (const instance of [a, b]) expect((await instance.status()).transport).toMatchObject({ connected: true, reconnects: 1, disconnects: 1 });
    });
    const after = ids('after', 50);
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: after });
    await eventually(async () => expect(seen(await b.records(), 'cqrs', 'after')).toEqual(after));
    const received = seen(await b.records(), 'cqrs', 'stream');
    expect(new Set(received).size).toBe(received.length); // at most once
    expect(received.slice(-50)).toEqual(stream.slice(-50)); // the stream went on after the restart
  });

  it('logs, counts and survives malformed, foreign-typed and hostile messages; accepts foreign CloudEvents of registered types', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const raw: NatsConnection = await connect({ servers: server.url });
    try {
      const hostile = [
        'not json',
        '[1,2]',
        '"a string"',
        'null',
        '{"specversion":"1.0","type":"OrderPlaced"}',
        '{"specversion":"1.0","id":"x1","type":"NoSuchEvent","data":{}}',
        '{"specversion":"1.0","id":"x2","type":"OrderPlaced","data":"text"}',
        '{"specversion":"1.0","id":"x3","type":"OrderPlaced","data":{"orderId":"evil-1"},"datatypes":"{\\"/__proto__/polluted\\":\\"Date\\"}"}',
        '{"specversion":"1.0","id":"x4","type":"OrderPlaced","data":{"orderId":"evil-2","at":"yesterday"},"datatypes":"{\\"/at\\":\\"Date\\"}"}',
      ];
      for (const body of hostile) raw.publish('events.domain.OrderPlaced', body);
      // Decodes: the "__proto__" key is data, never a prototype.
      raw.publish('events.domain.OrderPlaced', '{"specversion":"1.0","id":"x5","type":"OrderPlaced","data":{"orderId":"proto-0","total":42,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}');
      // What a Go or Python service would send: no origin, no datatypes.
      raw.publish(
        'events.domain.OrderPlaced',
        JSON.stringify({
          specversion: '1.0', id: 'go-1', source: '/billing-go', type: 'OrderPlaced', time: '2026-11-24T10:00:00Z',
          datacontenttype: 'application/json', data: { orderId: 'foreign-0', total: 42 },
        }),
      );
      await raw.flush();

      for (const instance of [a, b]) {
        const records = await eventually(async () => {
          const r = await instance.records();
          expect(seen(r, 'cqrs', 'proto')).toEqual(['proto-0']);
          expect(seen(r, 'cqrs', 'foreign')).toEqual(['foreign-0']);
          return r;
        });
        expect(seen(records, 'cqrs', 'evil')).toEqual([]);
        expect(records.filter((r) => r.eventId === 'proto-0' || r.eventId === 'foreign-0').every((r) => r.intact)).toBe(true);
        const foreign = records.find((r) => r.handler === 'pattern:*' && r.eventId === 'foreign-0')!;
        expect(foreign).toMatchObject({ local: false, type: 'OrderPlaced', subject: 'events.domain.OrderPlaced' });
        expect(foreign.origin).toBeUndefined();
        expect(await instance.send({ cmd: 'polluted' })).toBe(false);
        expect((await instance.status()).stats.decodeErrors).toBeGreaterThanOrEqual(hostile.length);
      }
      // Still healthy: later events flow.
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['later-0'] });
      await eventually(async () => expect(seen(await b.records(), 'cqrs', 'later')).toEqual(['later-0']));
    } finally {
      await raw.close();
    }
  });

  it.each([
    ['close()', (instance: ChildProcessInstance) => instance.close()],
    ['SIGTERM', (instance: ChildProcessInstance) => {
      const exited = new Promise((resolve) => instance.child.once('exit', resolve));
      instance.kill('SIGTERM');
      return exited;
    }],
  ])('loses nothing already published when a publisher stops cleanly (%s)', async (_how, stop) => {
    const [a, b] = [await start('a'), await start('b')];
    const burst = ids('burst', 5_000);
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: burst });
    await stop(a);
    await eventually(async () => expect(seen(await b.records(), 'cqrs', 'burst')).toHaveLength(burst.length));
  });

  it('refuses to start, naming the server, when NATS is unreachable', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const { code, stderr } = await ChildProcessInstance.failToStart({ EVENT_BUS_TRANSPORT: 'nats', NATS_URL: url, NATS_CONNECT_TIMEOUT_MS: '1000' });
    expect(code).not.toBe(0);
    expect(stderr).toContain(`cannot connect to NATS at ${url}`);
  });

  const tls = makeTlsFiles();
  const nkeyUser = createUser();
  const otherUser = createUser();
  const nkeyConfig = join(tls.dir, 'nkey.conf');
  writeFileSync(nkeyConfig, `authorization { users = [ { nkey: ${nkeyUser.getPublicKey()} } ] }\n`);
  const seed = (user: typeof nkeyUser) => new TextDecoder().decode(user.getSeed());
  const mutualTls = ['--tlsverify', '--tlscert', tls.serverCert, '--tlskey', tls.serverKey, '--tlscacert', tls.ca];
  afterAll(() => rmSync(tls.dir, { recursive: true, force: true }));

  it.each([
    ['a token', ['--auth', 's3cret'], { NATS_TOKEN: 's3cret' }, { NATS_TOKEN: 'wrong' }],
    ['a user and password', ['--user', 'game', '--pass', 'p4ss'], { NATS_USER: 'game', NATS_PASSWORD: 'p4ss' }, { NATS_USER: 'game', NATS_PASSWORD: 'nope' }],
    ['an nkey seed', ['-c', nkeyConfig], { NATS_NKEY_SEED: seed(nkeyUser) }, { NATS_NKEY_SEED: seed(otherUser) }],
    [
      'TLS with a client certificate',
      mutualTls,
      { NATS_TLS_CA_FILE: tls.ca, NATS_TLS_CERT_FILE: tls.clientCert, NATS_TLS_KEY_FILE: tls.clientKey },
      { NATS_TLS_CA_FILE: tls.ca },
    ],
  ])('authenticates with %s, and refuses to start with wrong credentials', async (_how, serverArgs, good, bad) => {
    const secured = await NatsServer.start(serverArgs);
    const env = { EVENT_BUS_TRANSPORT: 'nats', NATS_URL: secured.url, NATS_CONNECT_TIMEOUT_MS: '1000' };
    const [a, b] = [await ChildProcessInstance.start('a', { ...env, ...good }), await ChildProcessInstance.start('b', { ...env, ...good })];
    try {
      await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['auth-0'] });
      await eventually(async () => expect(seen(await b.records(), 'cqrs', 'auth')).toEqual(['auth-0']));
      const { code, stderr } = await ChildProcessInstance.failToStart({ ...env, ...bad });
      expect(code).not.toBe(0);
      expect(stderr).toContain(`cannot connect to NATS at ${secured.url}`);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await secured.dispose();
    }
  });

  it('refuses to start, naming the variable, on a bad setting', async () => {
    const { code, stderr } = await ChildProcessInstance.failToStart({ EVENT_BUS_TRANSPORT: 'kafka' });
    expect(code).not.toBe(0);
    expect(stderr).toContain('environment variable EVENT_BUS_TRANSPORT: expected "memory", "nats", "jetstream", "rabbitmq", got "kafka"');
  });
});
