import { Body, Controller, Get, Post } from '@nestjs/common';
import { OrdersService, type PlaceOrder } from './orders.service.js';

/** `POST /orders {customer, item, quantity}` places an order; `GET /orders` lists those this instance received. */
@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Post()
  place(@Body() body: PlaceOrder) {
    return this.orders.place(body);
  }

  @Get()
  recent() {
    return this.orders.recent();
  }
}
