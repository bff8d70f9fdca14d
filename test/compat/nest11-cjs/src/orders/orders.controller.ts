import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import { Money } from './money';
import { OrderPlaced } from './order-placed.event';

@Controller('orders')
export class OrdersController {
  constructor(private readonly eventBus: EventBus) {}

  @Post(':id')
  @HttpCode(202)
  place(@Param('id') id: string): { id: string } {
    this.eventBus.publish(new OrderPlaced(id, new Money(42, 'EUR'), new Date()));
    return { id };
  }
}
