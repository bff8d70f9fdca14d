// An ES module app on the packed package (run.mjs copies it into a scratch project with Nest <major>
// installed; `node esm-smoke.mjs <major>`): two instances, one with CqrsModule and one without, over the
// in-memory broker with the codec on. Plain JavaScript, so decorators are applied by hand. The optional
// peers (@opentelemetry/api, @nestjs/terminus) are not installed: the package must not need them.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventBus, EventsHandler } from '@nestjs/cqrs';
import { DomainEvent, DomainEventBus, EventBusHealthIndicator, EventBusModule, OnDomainEvent, ValueObject, MemoryBroker } from 'nestjs-domain-events';

const major = process.argv[2];
const versions = ['@nestjs/core', '@nestjs/cqrs'].map((name) => `${name} ${createRequire(import.meta.url)(`${name}/package.json`).version}`);
if (!versions.every((v) => v.includes(` ${major}.`))) throw new Error(`not Nest ${major}: ${versions.join(', ')}`);
for (const peer of ['@opentelemetry/api', '@nestjs/terminus']) {
  try {
    createRequire(import.meta.url).resolve(peer);
  } catch {
    continue;
  }
  throw new Error(`${peer} is installed: this smoke test must run without the optional peers`);
}

class Pos { constructor(x, y) { this.x = x; this.y = y; } }
ValueObject()(Pos);
class Moved { constructor(id, at, pos) { this.id = id; this.at = at; this.pos = pos; } }
DomainEvent('Moved')(Moved);
const seen = [];
const roots = [];
class H { on(e, ctx) { seen.push(`on:${e.id}:${e.at instanceof Date}:${e.pos instanceof Pos}:${ctx.local}`); roots.push(ctx.correlationId === ctx.id && ctx.causationId === undefined); } }
Reflect.decorate([OnDomainEvent('Moved')], H.prototype, 'on', Object.getOwnPropertyDescriptor(H.prototype, 'on'));
Injectable()(H);
class C { handle(e) { seen.push(`cqrs:${e.id}`); } }
EventsHandler(Moved)(C);
const broker = new MemoryBroker();
async function app(importCqrs) {
  class App {}
  Module({ imports: [...(importCqrs ? [CqrsModule.forRoot()] : []), EventBusModule.forRoot({ memory: { broker, codec: true } })], providers: [H, C] })(App);
  return NestFactory.createApplicationContext(App, { logger: ['error'] });
}
const a = await app(true), b = await app(false);
await a.get(DomainEventBus).publish(new Moved('m1', new Date(), new Pos(1, 2)));
a.get(EventBus).publish(new Moved('m2', new Date(), new Pos(1, 2)));
await new Promise((r) => setTimeout(r, 100));
const health = await b.get(EventBusHealthIndicator).isHealthy();
await a.close();
await b.close();
const expected = ['cqrs:m1', 'cqrs:m1', 'cqrs:m2', 'cqrs:m2', 'on:m1:true:true:false', 'on:m1:true:true:true', 'on:m2:true:true:false', 'on:m2:true:true:true'];
const got = seen.sort();
if (JSON.stringify(got) !== JSON.stringify(expected)) {
  console.error(`ESM smoke test failed:\n  expected ${JSON.stringify(expected)}\n  got      ${JSON.stringify(got)}`);
  process.exit(1);
}
if (health.eventBus?.status !== 'up' || roots.length !== 4 || !roots.every(Boolean)) {
  console.error(`ESM smoke test failed: health ${JSON.stringify(health)}, root flows ${JSON.stringify(roots)}`);
  process.exit(1);
}
console.log(`ESM app on ${versions.join(', ')}: ok`);
