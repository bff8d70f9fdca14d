import { Test, TestingModule } from '@nestjs/testing';
import { CqrsModule } from '@nestjs/cqrs';
import { DomainEventBus, EventBusModule } from 'nestjs-domain-events';
import { Money } from './money';
import { OrderLog } from './order-log';
import { OrderPlaced } from './order-placed.event';
import { OrdersModule } from './orders.module';

describe('OrderPlaced', () => {
  let app: TestingModule;

  beforeEach(async () => {
    app = await Test.createTestingModule({
      imports: [CqrsModule.forRoot(), EventBusModule.forRoot({ memory: { codec: true } }), OrdersModule],
    }).compile();
    await app.init();
  });

  afterEach(() => app.close());

  it('reaches both handlers, as an OrderPlaced with its Money and Date', async () => {
    await app.get(DomainEventBus).publish(new OrderPlaced('o-1', new Money(42, 'EUR'), new Date()));
    const log = app.get(OrderLog);
    for (let i = 0; i < 50 && log.lines.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log.lines.sort()).toEqual([
      'handled o-1 by @EventsHandler (cqrs, typed)',
      'handled o-1 by @OnDomainEvent (local, typed)',
    ]);
  });
});
