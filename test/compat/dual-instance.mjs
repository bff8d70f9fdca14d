// Both builds of the packed package in one process (run.mjs copies this next to an installed copy):
// `import` loads the ESM build and `require` the CommonJS one, two copies of every module. They must
// share one type registry, one default memory broker and one set of DI tokens and metadata keys, so that
// classes decorated through one entry are published, received and handled through the other.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import * as esm from 'nestjs-domain-events';

const require = createRequire(import.meta.url);
const cjs = require('nestjs-domain-events');
assert.match(require.resolve('nestjs-domain-events'), /[/\\]dist[/\\]cjs[/\\]index\.js$/);
assert.notEqual(esm.EventBusModule, cjs.EventBusModule, 'expected two copies of the package, ESM and CommonJS');

assert.equal(esm.eventRegistry, cjs.eventRegistry);
assert.equal(esm.EVENT_TRANSPORT, cjs.EVENT_TRANSPORT);
assert.equal(esm.RESOLVED_EVENT_BUS_OPTIONS, cjs.RESOLVED_EVENT_BUS_OPTIONS);

// Registered through one entry, found through the other.
class Pos { constructor(x, y) { this.x = x; this.y = y; } }
esm.ValueObject('DualPos')(Pos);
class Moved { constructor(id, pos) { this.id = id; this.pos = pos; } }
esm.DomainEvent('DualMoved')(Moved);
class Other {}
cjs.DomainEvent('DualOther')(Other);
assert.equal(cjs.eventRegistry.eventByType(Moved)?.name, 'DualMoved');
assert.equal(cjs.eventRegistry.valueObjectByName('DualPos')?.type, Pos);
assert.equal(esm.eventRegistry.eventByName('DualOther')?.type, Other);

// Handlers decorated through one entry, run by the EventBusModule of the other; an app of each build,
// meeting on the default memory broker (none is named).
const seen = [];
function handler(pkg, label, pattern) {
  class Handler { on(event, ctx) { seen.push(`${label}:${event.id}:${event.pos instanceof Pos}:${ctx.local ? 'local' : 'remote'}`); } }
  Reflect.decorate([pkg.OnDomainEvent(pattern)], Handler.prototype, 'on', Object.getOwnPropertyDescriptor(Handler.prototype, 'on'));
  Injectable()(Handler);
  return Handler;
}
async function app(pkg, providers) {
  class App {}
  Module({ imports: [pkg.EventBusModule.forRoot({ memory: { codec: true } })], providers })(App);
  return NestFactory.createApplicationContext(App, { logger: ['error'] });
}
const a = await app(cjs, [handler(esm, 'esm-decorated', Moved)]);
const b = await app(esm, [handler(cjs, 'cjs-decorated', 'DualMoved')]);
assert.ok(a.get(esm.EVENT_TRANSPORT), 'a DI token of one build finds the provider of the other');
await a.get(cjs.DomainEventBus).publish(new Moved('m1', new Pos(1, 2)));
await b.get(esm.DomainEventBus).publish(new Moved('m2', new Pos(3, 4)));
for (let i = 0; i < 100 && seen.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 10));
await a.close();
await b.close();
assert.deepEqual(seen.sort(), ['cjs-decorated:m1:true:remote', 'cjs-decorated:m2:true:local', 'esm-decorated:m1:true:local', 'esm-decorated:m2:true:remote']);
console.log('ESM and CommonJS builds in one process: one registry, one broker, one set of tokens: ok');
