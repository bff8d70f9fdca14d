import { DomainEvent } from 'nestjs-domain-events';
import { Money } from './money';

@DomainEvent('OrderPlaced')
export class OrderPlaced {
  constructor(
    readonly orderId: string,
    readonly total: Money,
    readonly at: Date,
  ) {}
}
