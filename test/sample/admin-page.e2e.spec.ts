import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { SampleProcess } from '../../sample/sample-process.js';
import { WsPlayer } from '../../sample/ws-player.js';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { freePort, NatsServer } from '../support/nats-server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('sample: the admin page in a real browser', () => {
  let sample: SampleProcess;
  let browser: Browser;

  beforeAll(async () => {
    sample = await SampleProcess.start({ port: await freePort(), main: join(process.cwd(), '.test-build/sample/main.js') });
    // Playwright gives the browser a fresh profile of its own; the machine has no network to reach.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await sample?.stop();
  });

  it('streams an event published during the test, with counters and players per room', async () => {
    const page = await browser.newPage();
    await page.goto(`${sample.url}/admin`);
    await page.locator('#instance', { hasText: 'on memory' }).waitFor({ timeout: 10_000 });
    const player = await WsPlayer.connect('browser-test-player', sample.port);
    try {
      player.join('kingsport-7');
      const line = page.locator('#events li', { hasText: 'PlayerEnteredRoom.kingsport-7' });
      await line.waitFor({ timeout: 10_000 });
      expect(await line.first().textContent()).toContain('"playerId":"browser-test-player"');
      await page.locator('#counters td', { hasText: 'PlayerEnteredRoom' }).first().waitFor({ timeout: 10_000 });
      await page.locator('#rooms td', { hasText: 'browser-test-player' }).waitFor({ timeout: 10_000 });
      // From status(): the connection, rates per type drawn as a chart, handlers with their figures.
      await page.locator('#connection.up', { hasText: 'ready since' }).waitFor({ timeout: 10_000 });
      await page.locator('#rate-chart polyline[data-type="PlayerEnteredRoom"]').waitFor({ state: 'attached', timeout: 10_000 });
      await page.locator('#rates td', { hasText: 'PlayerEnteredRoom' }).waitFor({ timeout: 10_000 });
      const handler = page.locator('#handlers tr', { hasText: 'ClusterPresence.onHeartbeat' });
      await handler.waitFor({ timeout: 10_000 });
      expect(await handler.locator('td').nth(1).textContent()).toMatch(/^[1-9]\d*$/); // runs
      expect(await page.locator('#durable').isHidden()).toBe(true); // nothing durable on memory
    } finally {
      await player.close();
    }
  });

  it('on JetStream: consumers with pending and ack pending, dead letters, and a replay button that replays', async () => {
    const server = await NatsServer.start();
    const durable = await SampleProcess.start({
      port: await freePort(),
      main: join(process.cwd(), '.test-build/sample/main.js'),
      env: { EVENT_BUS_TRANSPORT: 'jetstream', NATS_URL: server.url, EVENT_BUS_STREAM_STORAGE: 'memory' },
    });
    const nc = await connect({ servers: server.url });
    // Closed before the sample stops: an open event stream would hold its HTTP server open.
    const page = await browser.newPage();
    try {
      await page.goto(`${durable.url}/admin`);
      await page.locator('#consumers td', { hasText: 'instance-' }).first().waitFor({ timeout: 10_000 });
      expect(await page.locator('#consumers tr').first().locator('td').count()).toBe(5);
      // A message no handler can decode is dead-lettered at once, by every consumer it reached.
      await jetstream(nc).publish('events.domain.GameTick', 'not json', { msgID: 'admin-bad-1' });
      const letter = page.locator('#dead-letters li', { hasText: 'admin-bad-1' }).first();
      await letter.waitFor({ timeout: 10_000 });
      expect(Number(await page.locator('#dead-letter-count').textContent())).toBeGreaterThan(0);
      await letter.locator('button.replay').click();
      // Replayed to the consumers that gave up; undecodable still, it is dead-lettered again.
      await page.locator('#replay-result', { hasText: /^replayed [1-9]\d* of admin-bad-1$/ }).waitFor({ timeout: 10_000 });
    } finally {
      await page.close();
      await nc.close();
      await durable.stop();
      await server.dispose();
    }
  });
});
