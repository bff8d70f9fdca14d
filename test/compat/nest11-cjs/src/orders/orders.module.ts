import { Module } from '@nestjs/common';
import { OrderPlacedHandler, ShippingService } from './order-handlers';
import { OrderLog } from './order-log';
import { OrdersController } from './orders.controller';

@Module({
  controllers: [OrdersController],
  providers: [OrderLog, ShippingService, OrderPlacedHandler],
})
export class OrdersModule {}
