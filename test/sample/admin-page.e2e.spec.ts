import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { SampleProcess } from '../../sample/sample-process.js';
import { WsPlayer } from '../../sample/ws-player.js';
import { freePort } from '../support/nats-server.js';

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
    } finally {
      await player.close();
    }
  });
});
