import { Module } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { EventBusModule } from 'nestjs-domain-events';
import { OrdersModule } from './orders/orders.module';

// The transport comes from the environment: EVENT_BUS_TRANSPORT=nats, NATS_URL.
@Module({
  imports: [CqrsModule.forRoot(), EventBusModule.forRoot(), OrdersModule],
})
export class AppModule {}
