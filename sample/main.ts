import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { DomainEventBus } from '../lib/index.js';
import { AppModule } from './app.module.js';
import { SAMPLE_CONFIG, type SampleConfig } from './sample-config.js';

const app = await NestFactory.create(AppModule);
app.useWebSocketAdapter(new WsAdapter(app));
app.enableShutdownHooks();
const { port } = app.get<SampleConfig>(SAMPLE_CONFIG);
await app.listen(port);
const { instanceId, transport } = app.get(DomainEventBus).status();
new Logger('Sample').log(`instance ${instanceId} on ${transport.transport}: ws://localhost:${port}/ws, admin http://localhost:${port}/admin`);
