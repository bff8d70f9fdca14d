import { Module, type DynamicModule } from '@nestjs/common';
import { EventBusModule } from '../event-bus.module.js';
import type { EventBusModuleOptions } from '../event-bus-options.js';
import { MemoryBroker } from '../transport/memory/memory-broker.js';
import { EventBusTester } from './event-bus-tester.js';

/**
 * The event bus for application tests (`@nestjs/testing`): the memory transport with events
 * through the wire codec (a class that cannot be encoded fails the test, not production), a
 * broker of its own per test module, and the EventBusTester to await what was published and handled.
 */
@Module({})
export class EventBusTestingModule {
  static forRoot(options: Omit<EventBusModuleOptions, 'transport' | 'memory'> = {}): DynamicModule {
    return {
      module: EventBusTestingModule,
      global: true,
      imports: [EventBusModule.forRoot({ ...options, transport: 'memory', memory: { codec: true, broker: new MemoryBroker() } })],
      providers: [EventBusTester],
      exports: [EventBusTester],
    };
  }
}
