import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { SampleProcess } from '../../sample/sample-process.js';
import { eventually } from '../support/instances.js';
import { freePort } from '../support/nats-server.js';
import { PostgresServer } from '../support/postgres-server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('sample: orders through the outbox (EVENT_BUS_OUTBOX_URL)', () => {
  let postgres: PostgresServer;
  let sample: SampleProcess;
  let browser: Browser;

  beforeAll(async () => {
    postgres = await PostgresServer.start();
    const url = postgres.createDatabase('sample');
    sample = await SampleProcess.start({ port: await freePort(), main: join(process.cwd(), '.test-build/sample/main.js'), env: { EVENT_BUS_OUTBOX_URL: url } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await sample?.stop();
    await postgres?.dispose();
  });

  it('commits the order and its event together, delivers the event, and shows the outbox on the admin page', async () => {
    const response = await fetch(`${sample.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer: 'c-42', item: 'lantern', quantity: 2 }),
    });
    expect(response.status).toBe(201);
    const { orderId } = (await response.json()) as { orderId: string };
    expect(postgres.psql('sample', `SELECT item FROM sample_orders WHERE id = '${orderId}'`).trim()).toBe('lantern');
    await eventually(async () => expect(await (await fetch(`${sample.url}/orders`)).json()).toEqual([expect.objectContaining({ orderId, item: 'lantern', quantity: 2 })]));

    const bad = await fetch(`${sample.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ customer: 'c 42', item: 'x', quantity: 1 }) });
    expect(bad.status).toBe(400);

    const page = await browser.newPage();
    await page.goto(`${sample.url}/admin`);
    await page.locator('#outbox-lag td', { hasText: 'unsent events' }).waitFor({ timeout: 10_000 });
    await page.locator('#outbox-lag td', { hasText: 'sent by this instance' }).waitFor({ timeout: 10_000 });
  });
});
