import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { ChildProcessInstance, eventually } from '../support/instances.js';
import { makeTlsFiles } from '../support/tls-certificates.js';
import { NatsCluster } from '../support/nats-cluster.js';
import { freePort, NatsServer } from '../support/nats-server.js';
import { ids, idsOf as seen } from '../support/records.js';
import { orderPlaced, sdkEvent, sdkOrders, toNatsHeaders } from '../support/cloudevents.js';

describe('core NATS in production conditions (instances as separate processes)', () => {
  let cluster: NatsCluster;
  let server: NatsServer;
  const start = (name: string, env: Record<string, string> = {}) => cluster.instance(name, env);

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
    // Twice at most for what the server had not confirmed to the publisher before it died (sent again on reconnect).
    expect(received.length - new Set(received).size).toBeLessThanOrEqual((await a.status()).transport.resentPublishes!);
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
      raw.publish('events.domain.OrderPlaced', '{"specversion":"1.0","id":"x5","source":"/x","type":"OrderPlaced","data":{"orderId":"proto-0","total":42,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}');
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
          // Each subscription gets its own copy: the pattern's may come a turn later.
          expect(r.some((record) => record.handler === 'pattern:*' && record.eventId === 'foreign-0')).toBe(true);
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

  it('rejects, counts and logs in one safe line what a hostile publisher sends: forged types, huge values, broken attributes', async () => {
    // NO_COLOR: any escape sequence in the output came from the wire.
    const a = await start('a', { FIXTURE_LOG: 'true', NO_COLOR: '1' });
    const raw: NatsConnection = await connect({ servers: server.url });
    try {
      const forged = '{"specversion":"1.0","id":"f1","source":"/mallory","type":"GameTick","data":{"tickId":"evil-forged","at":"2026-11-24T10:00:00Z"},"datatypes":"{\\"/at\\":\\"Date\\"}"}';
      const hostile: Array<[string, string]> = [
        // A publisher allowed only OrderPlaced's subjects sends another type: NATS permissions must hold.
        ['events.domain.OrderPlaced', forged],
        ['events.domain.OrderPlaced.room-1', forged],
        ['events.domain.OrderPlaced', orderPlaced('evil-injected', { type: 'OrderPlaced\n[Nest] 1  - FORGED LINE \u001b[31mred' })],
        ['events.domain.OrderPlaced', orderPlaced('evil-long-id', { id: 'x'.repeat(900_000) })],
        ['events.domain.OrderPlaced', orderPlaced('evil-bigint', { data: { orderId: 'evil-bigint', total: 42, n: '9'.repeat(900_000) }, datatypes: '{"/n":"bigint"}' })],
        ['events.domain.OrderPlaced', orderPlaced('evil-length', { data: { orderId: 'evil-length', total: 42, list: [1] }, datatypes: '{"/list/length":"undefined"}' })],
        ['events.domain.OrderPlaced', orderPlaced('evil-text', { data: undefined, data_base64: Buffer.from('hello').toString('base64'), datacontenttype: 'text/plain' })],
        ['events.domain.OrderPlaced', orderPlaced('evil-no-data', { data: undefined })],
        ['events.domain.OrderPlaced', orderPlaced('evil-null-data', { data: null })],
        ['events.domain.OrderPlaced', orderPlaced('evil-time', { time: 'yesterday', data: { orderId: 'evil-time', total: 42 } })],
        ['events.domain.OrderPlaced', orderPlaced('evil-v03', { specversion: '0.3', data: { orderId: 'evil-v03', total: 42 } })],
        ['events.domain.OrderPlaced', orderPlaced('evil-v2', { specversion: '2.0', data: { orderId: 'evil-v2', total: 42 } })],
        ['events.domain.OrderPlaced', orderPlaced('evil-empty-id', { id: '', data: { orderId: 'evil-empty-id', total: 42 } })],
        ['events.domain.OrderPlaced', orderPlaced('evil-source', { source: 'billing service', data: { orderId: 'evil-source', total: 42 } })],
        ['events.domain.OrderPlaced', orderPlaced('evil-no-source', { source: undefined, data: { orderId: 'evil-no-source', total: 42 } })],
      ];
      for (const [subject, body] of hostile) raw.publish(subject, body);
      raw.publish('events.domain.OrderPlaced', orderPlaced('good-0'));
      await raw.flush();

      const records = await eventually(async () => {
        const r = await a.records();
        expect(seen(r, 'cqrs', 'good')).toEqual(['good-0']);
        expect((await a.status()).stats.decodeErrors).toBeGreaterThanOrEqual(hostile.length);
        return r;
      });
      expect(seen(records, 'cqrs', 'evil')).toEqual([]);
      expect(records.filter((r) => r.eventId.startsWith('evil')).map((r) => r.eventId)).toEqual([]);
      const output = a.output();
      const lines = output.split('\n');
      expect(lines.filter((line) => line.startsWith('[Nest] 1  - FORGED'))).toEqual([]);
      expect(output).not.toContain('\u001b');
      expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(1_000);
      expect(output).not.toContain('RangeError');
      expect(lines.filter((line) => line.includes('dropped a message'))).toHaveLength((await a.status()).stats.decodeErrors);
    } finally {
      await raw.close();
    }
  });

  it('keeps its heap bounded under messages with huge, distinct datatypes', async () => {
    const a = await start('a');
    const raw: NatsConnection = await connect({ servers: server.url });
    try {
      const before = (await a.send({ cmd: 'heap' })) as number;
      const count = 100;
      for (let i = 0; i < count; i++) {
        const types = Array.from({ length: 36_000 }, (_, j) => `"/k${i}_${j}":"X"`).join(',');
        const body = orderPlaced(`huge-${i}`, { datatypes: `{${types}}` });
        expect(body.length).toBeLessThan(1_000_000);
        raw.publish('events.domain.OrderPlaced', body);
        if (i % 10 === 9) await raw.flush();
      }
      await raw.flush();
      // Each message reaches every subscription of the instance that matches OrderPlaced.
      await eventually(async () => expect((await a.status()).stats.decodeErrors).toBeGreaterThanOrEqual(count), 60_000);
      await new Promise((r) => setTimeout(r, 500));
      const growth = ((await a.send({ cmd: 'heap' })) as number) - before;
      expect(growth).toBeLessThan(64 * 2 ** 20);
    } finally {
      await raw.close();
    }
  }, 120_000);

  it('refuses names that would break the NATS protocol line, and an empty event id, at publish and subscribe', async () => {
    const a = await start('a');
    await expect(a.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: ['long-0'], room: 'r'.repeat(5_000) })).rejects.toThrow(/subject .* at most 3584 bytes/);
    await expect(a.send({ cmd: 'subscribe', name: 'long', pattern: 'PlayerEnteredRoom', key: 'r'.repeat(5_000) })).rejects.toThrow(/at most 3584 bytes/);
    await expect(a.send({ cmd: 'subscribe', name: 'long-group', pattern: 'OrderPlaced', group: 'g'.repeat(5_000) })).rejects.toThrow(/group .* at most 128 characters/);
    await expect(a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['empty-0'], eventId: '' })).rejects.toThrow(/id "" is empty/);
    // Still connected and delivering.
    const b = await start('b');
    await a.send({ cmd: 'publish', type: 'OrderPlaced', ids: ['after-0'] });
    await eventually(async () => expect(seen(await b.records(), 'cqrs', 'after')).toEqual(['after-0']));
    expect((await a.status()).transport).toMatchObject({ connected: true, disconnects: 0 });
  });

  it('accepts binary-mode CloudEvents (attributes in ce- headers) and the CloudEvents SDK\'s events, structured and binary', async () => {
    const a = await start('a');
    const raw: NatsConnection = await connect({ servers: server.url });
    try {
      const binary = [
        { headers: { 'ce-specversion': '1.0', 'ce-id': 'bin-1', 'ce-type': 'OrderPlaced', 'ce-source': '/billing-go', 'ce-datacontenttype': 'application/json' }, body: '{"orderId":"bin-0","total":42}' },
        // Header names are case-insensitive; values are percent-encoded or quoted.
        { headers: { 'Ce-Specversion': '1.0', 'CE-ID': 'bin%202', 'Ce-Type': 'OrderPlaced', 'ce-source': '"/billing-go"', 'ce-time': '2026-11-24T10:00:00Z' }, body: '{"orderId":"bin-1","total":42}' },
        ...sdkOrders('sdk'),
      ];
      for (const { headers, body } of binary) raw.publish('events.domain.OrderPlaced', body, { headers: toNatsHeaders(headers) });
      // Binary mode with broken attributes: rejected, never an empty instance.
      raw.publish('events.domain.OrderPlaced', '{"orderId":"evil-0","total":42}', { headers: toNatsHeaders({ 'ce-id': 'x', 'ce-type': 'OrderPlaced', 'ce-source': '/s' }) });
      await raw.flush();
      const records = await eventually(async () => {
        const r = await a.records();
        expect(seen(r, 'cqrs', 'bin').sort()).toEqual(['bin-0', 'bin-1']);
        expect(seen(r, 'cqrs', 'sdk').sort()).toEqual(['sdk-base64', 'sdk-base64-binary', 'sdk-json', 'sdk-json-binary']);
        expect((await a.status()).stats.decodeErrors).toBeGreaterThan(0);
        return r;
      });
      expect(records.filter((r) => r.handler === 'cqrs' && /^(bin|sdk)-/.test(r.eventId)).every((r) => r.intact)).toBe(true);
      expect(records.find((r) => r.handler === 'pattern:*' && r.eventId === 'bin-0')).toMatchObject({ type: 'OrderPlaced', subject: 'events.domain.OrderPlaced', local: false });
      expect(seen(records, 'cqrs', 'evil')).toEqual([]);
    } finally {
      await raw.close();
    }
  });

  it('publishes what the CloudEvents SDK validates, in structured and in binary mode, and each mode reads the other', async () => {
    const structured = await start('s');
    const binary = await start('b', { EVENT_BUS_CLOUDEVENTS_MODE: 'binary' });
    const raw: NatsConnection = await connect({ servers: server.url });
    try {
      const seenOnWire: { body: Uint8Array; headers: ReturnType<typeof toNatsHeaders> }[] = [];
      raw.subscribe('events.domain.>', { callback: (_error, m) => void seenOnWire.push({ body: m.data, headers: m.headers }) });
      await raw.flush();
      for (const instance of [structured, binary]) {
        await instance.send({ cmd: 'publish', type: 'PlayerEnteredRoom', ids: [`wire-${instance.name}-room`] });
        await instance.send({ cmd: 'publish', type: 'OrderPlaced', ids: [`wire-${instance.name}-order`] });
        await instance.send({ cmd: 'publish', type: 'GameTick', ids: [`wire-${instance.name}-tick`] });
      }
      await eventually(() => expect(seenOnWire).toHaveLength(6));
      expect(seenOnWire.map((m) => m.headers !== undefined)).toEqual([false, false, false, true, true, true]);
      for (const { body, headers } of seenOnWire) expect(sdkEvent(body, headers).validate()).toBe(true);
      await eventually(async () => {
        expect((await structured.records()).filter((r) => r.eventId.startsWith('wire-b-') && r.handler === 'pattern:>' && r.intact)).toHaveLength(3);
        expect((await binary.records()).filter((r) => r.eventId.startsWith('wire-s-') && r.handler === 'pattern:>' && r.intact)).toHaveLength(3);
      });
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

  it.each([
    [{ EVENT_BUS_TRANSPORT: 'kafka' }, 'environment variable EVENT_BUS_TRANSPORT: expected "memory", "nats", "jetstream", "redis", "rabbitmq", got "kafka"'],
    [{ EVENT_BUS_SOURCE: 'billing service' }, 'environment variable EVENT_BUS_SOURCE: must be a URI-reference'],
    [{ EVENT_BUS_INSTANCE_ID: 'i'.repeat(200) }, 'environment variable EVENT_BUS_INSTANCE_ID: must be at most 128 characters'],
    [{ EVENT_BUS_MAX_MESSAGE_BYTES: 'lots' }, 'environment variable EVENT_BUS_MAX_MESSAGE_BYTES: expected an integer'],
  ])('refuses to start, naming the variable, on a bad setting: %j', async (env, message) => {
    const { code, stderr } = await ChildProcessInstance.failToStart(env);
    expect(code).not.toBe(0);
    expect(stderr).toContain(message);
  });
});
