import { DomainEvent } from '../../lib/index.js';

/** Routed by customer: a customer's orders are relayed in the order they were placed. */
@DomainEvent('OrderPlaced', { key: (e: OrderPlaced) => e.customer })
export class OrderPlaced {
  constructor(
    readonly orderId: string,
    readonly customer: string,
    readonly item: string,
    readonly quantity: number,
    readonly at: Date,
  ) {}
}
