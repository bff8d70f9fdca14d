import { Injectable } from '@nestjs/common';
import { EventsHandler, IEventHandler } from '@nestjs/cqrs';
import { EventContext, OnDomainEvent } from 'nestjs-domain-events';
import { OrderLog } from './order-log';
import { OrderPlaced } from './order-placed.event';

@Injectable()
export class ShippingService {
  constructor(private readonly log: OrderLog) {}

  @OnDomainEvent(OrderPlaced)
  onOrderPlaced(event: OrderPlaced, ctx: EventContext): void {
    this.log.add('@OnDomainEvent', event, ctx.local ? 'local' : 'remote');
  }
}

@EventsHandler(OrderPlaced)
export class OrderPlacedHandler implements IEventHandler<OrderPlaced> {
  constructor(private readonly log: OrderLog) {}

  handle(event: OrderPlaced): void {
    this.log.add('@EventsHandler', event, 'cqrs');
  }
}
