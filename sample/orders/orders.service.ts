import { randomUUID } from 'node:crypto';
import { BadRequestException, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import pg from 'pg';
import { EventOutbox, OnDomainEvent } from '../../lib/index.js';
import { OrderPlaced } from './order-events.js';

export interface PlaceOrder {
  customer: string;
  item: string;
  quantity: number;
}

/**
 * An order row and its OrderPlaced event in one transaction: the event is sent once the order is
 * committed, and never for an order that was rolled back.
 */
@Injectable()
export class OrdersService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Orders');
  private readonly pool = new pg.Pool({ connectionString: process.env.EVENT_BUS_OUTBOX_URL });
  /** Orders this instance learnt of from the bus (placed on any instance). */
  private readonly seen: OrderPlaced[] = [];

  constructor(private readonly outbox: EventOutbox) {
    // An idle client losing the server must not crash the process; the next query reports it.
    this.pool.on('error', (error) => this.logger.warn(`orders database: ${error.message}`));
  }

  async onModuleInit(): Promise<void> {
    await this.pool.query(
      'CREATE TABLE IF NOT EXISTS sample_orders (id text PRIMARY KEY, customer text NOT NULL, item text NOT NULL, quantity int NOT NULL, placed_at timestamptz NOT NULL)',
    );
  }

  onModuleDestroy(): Promise<void> {
    return this.pool.end();
  }

  async place({ customer, item, quantity }: PlaceOrder): Promise<OrderPlaced> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(String(customer))) throw new BadRequestException('customer: 1 to 64 letters, digits, "_" or "-"');
    if (typeof item !== 'string' || item === '' || item.length > 200) throw new BadRequestException('item: a string of 1 to 200 characters');
    if (!Number.isInteger(quantity) || quantity < 1) throw new BadRequestException('quantity: a positive integer');
    const order = new OrderPlaced(randomUUID(), customer, item, quantity, new Date());
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO sample_orders VALUES ($1, $2, $3, $4, $5)', [order.orderId, customer, item, quantity, order.at]);
      await this.outbox.publish(order, client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
    return order;
  }

  /** The latest orders this instance received through the bus. */
  recent(): OrderPlaced[] {
    return this.seen.slice(-20).reverse();
  }

  @OnDomainEvent(OrderPlaced)
  received(order: OrderPlaced): void {
    this.seen.push(order);
    if (this.seen.length > 100) this.seen.shift();
    this.logger.log(`order ${order.orderId}: ${order.quantity} x ${order.item} for ${order.customer}`);
  }
}
