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

/** The transport and NATS settings come from the environment (EVENT_BUS_TRANSPORT, NATS_URL, …); memory by default. */
@Module({
  imports: [CqrsModule.forRoot(), EventBusModule.forRoot({ source: '/rooms-sample' })],
  controllers: [AdminController],
  providers: [{ provide: SAMPLE_CONFIG, useFactory: sampleConfigFromEnv }, RoomMembership, RoomsGateway, ClusterPresence, GameTicker, AdminFeed],
})
export class AppModule {}
