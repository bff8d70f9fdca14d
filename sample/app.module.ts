import { Module } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { EventBusModule } from '../lib/index.js';
import { AdminFeed } from './admin-feed.service.js';
import { AdminController } from './admin.controller.js';
import { RoomMembership } from './room-membership.service.js';
import { RoomsGateway } from './rooms.gateway.js';
import { SAMPLE_CONFIG, sampleConfigFromEnv } from './sample-config.js';
import { ClusterPresence } from './cluster-presence.service.js';
import { GameTicker } from './game-ticker.service.js';
import { OrdersModule } from './orders/orders.module.js';

const withOrders = !!process.env.EVENT_BUS_OUTBOX_URL;

/**
 * The transport and NATS settings come from the environment (EVENT_BUS_TRANSPORT, NATS_URL, …); memory by default.
 * With EVENT_BUS_OUTBOX_URL, the outbox (its table created at startup) and the order flow.
 */
@Module({
  imports: [
    CqrsModule.forRoot(),
    EventBusModule.forRoot({ source: '/rooms-sample', outbox: withOrders ? { migrate: true } : undefined }),
    ...(withOrders ? [OrdersModule] : []),
  ],
  controllers: [AdminController],
  providers: [{ provide: SAMPLE_CONFIG, useFactory: sampleConfigFromEnv }, RoomMembership, RoomsGateway, ClusterPresence, GameTicker, AdminFeed],
})
export class AppModule {}
