import { Module } from '@nestjs/common';
import { OrdersController } from './orders.controller.js';
import { OrdersService } from './orders.service.js';

/** The order flow: only when EVENT_BUS_OUTBOX_URL names the PostgreSQL database of the orders and the outbox. */
@Module({ controllers: [OrdersController], providers: [OrdersService] })
export class OrdersModule {}
