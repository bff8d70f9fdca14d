import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CqrsModule, EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { DomainEvent, DomainEventBus, EventBusModule, EventContext, OnDomainEvent, ValueObject } from '../../lib/index.js';

@ValueObject()
class Pos { constructor(readonly x: number, readonly y: number) {} }

@DomainEvent('SmokeEvent')
class SmokeEvent { constructor(readonly id: string, readonly at: Date, readonly pos: Pos) {} }

const seen: unknown[] = [];
@Injectable()
class H {
  @OnDomainEvent('SmokeEvent')
  on(e: SmokeEvent, ctx: EventContext) { seen.push(['on', e instanceof SmokeEvent, ctx.local]); }
}
@EventsHandler(SmokeEvent)
class C implements IEventHandler<SmokeEvent> { handle(e: SmokeEvent) { seen.push(['cqrs', e.id]); } }

@Module({ imports: [CqrsModule.forRoot(), EventBusModule.forRoot({ memory: { codec: true } })], providers: [H, C] })
class AppModule {}

test('smoke', async () => {
  const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = ref.createNestApplication();
  await app.init();
  await app.get(DomainEventBus).publish(new SmokeEvent('a', new Date(), new Pos(1, 2)));
  app.get(EventBus).publish(new SmokeEvent('b', new Date(), new Pos(1, 2)));
  await new Promise((r) => setTimeout(r, 50));
  expect(seen).toEqual([['cqrs', 'a'], ['on', true, true], ['cqrs', 'b'], ['on', true, true]]);
  await app.close();
});
