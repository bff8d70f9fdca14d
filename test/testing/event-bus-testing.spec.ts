import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { CommandBus, CommandHandler, CqrsModule, EventBus, ofType, Saga, type ICommandHandler, type IEvent } from '@nestjs/cqrs';
import { Test, type TestingModule } from '@nestjs/testing';
import { map, type Observable } from 'rxjs';
import { DomainEvent, DomainEventBus, EventBusTester, EventBusTestingModule, OnDomainEvent } from '../../lib/index.js';

// The application under test: a saga that reacts to OrderPlaced by asking for an invoice.
@DomainEvent('TestingSpecOrderPlaced')
class OrderPlaced {
  constructor(readonly orderId: string, readonly total: number) {}
}

@DomainEvent('TestingSpecInvoiceRequested')
class InvoiceRequested {
  constructor(readonly orderId: string, readonly amount: number) {}
}

class RequestInvoice {
  constructor(readonly orderId: string, readonly amount: number) {}
}

@Injectable()
class BillingSaga {
  @Saga()
  invoices = (events$: Observable<IEvent>): Observable<RequestInvoice> =>
    events$.pipe(ofType(OrderPlaced), map((order) => new RequestInvoice(order.orderId, order.total)));
}

@CommandHandler(RequestInvoice)
class RequestInvoiceHandler implements ICommandHandler<RequestInvoice> {
  constructor(private readonly eventBus: EventBus) {}

  async execute({ orderId, amount }: RequestInvoice) {
    this.eventBus.publish(new InvoiceRequested(orderId, amount));
  }
}

@Injectable()
class Mailer {
  readonly sent: string[] = [];

  @OnDomainEvent(InvoiceRequested)
  send(invoice: InvoiceRequested) {
    if (invoice.amount < 0) throw new Error('negative invoice');
    this.sent.push(invoice.orderId);
  }
}

/** Cannot travel: a nested instance of a class that is not a @ValueObject. */
class Money {
  constructor(readonly cents: number) {}
}
@DomainEvent('TestingSpecRefunded')
class Refunded {
  constructor(readonly amount: Money) {}
}

describe('EventBusTestingModule: an application test of a saga', () => {
  let moduleRef: TestingModule;
  let bus: DomainEventBus;
  let events: EventBusTester;

  beforeEach(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [CqrsModule.forRoot(), EventBusTestingModule.forRoot()],
      providers: [BillingSaga, RequestInvoiceHandler, Mailer],
    }).compile();
    await moduleRef.init();
    bus = moduleRef.get(DomainEventBus);
    events = moduleRef.get(EventBusTester);
  });

  afterEach(() => moduleRef.close());

  it('awaits the event a saga publishes in reaction to another, caused by it', async () => {
    await bus.publish(new OrderPlaced('o-1', 42));

    const invoice = await events.published(InvoiceRequested, (e) => e.orderId === 'o-1');
    expect(invoice).toEqual(new InvoiceRequested('o-1', 42));
    const [placed, requested] = events.events;
    expect(requested.context).toMatchObject({ causationId: placed.context.id, correlationId: placed.context.id });

    const run = await events.handled('Mailer.send');
    expect(run).toMatchObject({ error: undefined, event: invoice });
    expect(moduleRef.get(Mailer).sent).toEqual(['o-1']);
  });

  it('also sees what goes through the CQRS EventBus, and failed runs with their error', async () => {
    moduleRef.get(EventBus).publish(new InvoiceRequested('o-2', -1));
    const run = await events.handled(InvoiceRequested, (r) => r.event.orderId === 'o-2');
    expect(run.handler).toBe('Mailer.send');
    expect(run.error?.message).toBe('negative invoice');
  });

  it('fails a publish the wire could not carry, as production would', async () => {
    await expect(bus.publish(new Refunded(new Money(100)))).rejects.toThrow(/Money is not a registered value object/);
  });

  it('rejects a wait that times out, saying what was published instead; reset() forgets', async () => {
    await bus.publish(new OrderPlaced('o-3', 1));
    await events.published(InvoiceRequested);
    await expect(events.published(OrderPlaced, (e) => e.orderId === 'nope', 50)).rejects.toThrow(
      'no OrderPlaced matching the predicate was published within 50 ms; published: TestingSpecOrderPlaced ×1, TestingSpecInvoiceRequested ×1',
    );
    events.reset();
    expect(events.events).toEqual([]);
    const later = events.published(OrderPlaced);
    await moduleRef.get(CommandBus).execute(new RequestInvoice('o-4', 2));
    await bus.publish(new OrderPlaced('o-5', 3));
    expect(await later).toEqual(new OrderPlaced('o-5', 3));
  });
});

describe('causation: false', () => {
  it('runs handlers outside an async context of their event: what they publish starts a flow of its own', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [CqrsModule.forRoot(), EventBusTestingModule.forRoot({ causation: false })],
      providers: [BillingSaga, RequestInvoiceHandler, Mailer],
    }).compile();
    await moduleRef.init();
    try {
      await moduleRef.get(DomainEventBus).publish(new OrderPlaced('o-6', 5));
      await moduleRef.get(EventBusTester).published(InvoiceRequested);
      const [, requested] = moduleRef.get(EventBusTester).events;
      expect(requested.context.causationId).toBeUndefined();
      expect(requested.context.correlationId).toBe(requested.context.id);
    } finally {
      await moduleRef.close();
    }
  });
});
