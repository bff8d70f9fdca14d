import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The Redis client is an optional peer: an application on memory or NATS runs without it installed,
 * and one that selects Redis without it fails at startup saying what to install. Checked on the
 * compiled library copied beside a node_modules that has every dependency except `redis`.
 */
describe('the Redis client package is optional', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'no-redis-'));
    cpSync(join(process.cwd(), '.test-build/lib'), join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    mkdirSync(join(dir, 'node_modules'));
    for (const name of readdirSync(join(process.cwd(), 'node_modules'))) {
      if (name === 'redis' || name === '@redis' || name.startsWith('.')) continue;
      symlinkSync(join(process.cwd(), 'node_modules', name), join(dir, 'node_modules', name));
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs an ES module in that directory; returns what it printed. */
  const run = (source: string) => execFileSync(process.execPath, ['--input-type=module', '-e', source], { cwd: dir, encoding: 'utf8' });

  const app = (transport: string) => `
    import 'reflect-metadata';
    import { NestFactory } from '@nestjs/core';
    import { EventBusModule, DomainEventBus } from './lib/index.js';
    try {
      const app = await NestFactory.createApplicationContext(EventBusModule.forRoot({ transport: '${transport}' }), { logger: false });
      console.log('started on', app.get(DomainEventBus).status().transport.transport);
      await app.close();
    } catch (error) {
      console.log(error.name + ': ' + error.message);
    }`;

  it('is not there to be found', () => {
    expect(run(`import('redis').then(() => console.log('found'), (e) => console.log(e.code))`).trim()).toBe('ERR_MODULE_NOT_FOUND');
  });

  it('is not needed by an application on another transport', () => {
    expect(run(app('memory')).trim()).toBe('started on memory');
  });

  it('is named, with how to install it, when the Redis transport is selected without it', () => {
    expect(run(app('redis')).trim()).toBe(
      'RedisClientMissingError: EVENT_BUS_TRANSPORT=redis needs the Redis client package "redis" (node-redis, v5 or later): npm install redis',
    );
  });
});
