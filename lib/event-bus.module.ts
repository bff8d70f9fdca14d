import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { EVENT_BUS_MODULE_OPTIONS, EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
import { CqrsBridge } from './cqrs-bridge.js';
import { DeadLetters } from './dead-letters.js';
import { DomainEventBus } from './domain-event-bus.js';
import { DomainEventHandlerLoader } from './domain-event-handler-loader.js';
import type { EventBusModuleAsyncOptions, EventBusModuleOptions, EventBusOptionsFactory } from './event-bus-options.js';
import { resolveEventBusOptions, type ResolvedEventBusOptions } from './resolve-options.js';
import { createTransport } from './create-transport.js';
import { EventOutbox, outboxOptionsProvider } from './outbox/event-outbox.js';

/** Holds the loader apart from the global module: its bootstrap hook must run after CqrsModule's. */
@Module({ imports: [DiscoveryModule], providers: [DomainEventHandlerLoader] })
class DomainEventHandlerLoaderModule {}

const coreProviders: Provider[] = [
  {
    provide: RESOLVED_EVENT_BUS_OPTIONS,
    useFactory: (options: EventBusModuleOptions) => resolveEventBusOptions(options),
    inject: [EVENT_BUS_MODULE_OPTIONS],
  },
  { provide: EVENT_TRANSPORT, useFactory: (resolved: ResolvedEventBusOptions, options: EventBusModuleOptions) => createTransport(resolved, options), inject: [RESOLVED_EVENT_BUS_OPTIONS, EVENT_BUS_MODULE_OPTIONS] },
  DomainEventBus,
  CqrsBridge,
  DeadLetters,
  // Always provided: with forRootAsync the options are known only at run time; inert when not configured.
  outboxOptionsProvider,
  EventOutbox,
];

/**
 * Distributes domain events across the instances of an application. Global: import it once,
 * in the root module; `DomainEventBus` and the CQRS `EventBus` can then be injected anywhere.
 */
@Module({})
export class EventBusModule {
  static forRoot(options: EventBusModuleOptions = {}): DynamicModule {
    return EventBusModule.create([{ provide: EVENT_BUS_MODULE_OPTIONS, useValue: options }]);
  }

  static forRootAsync(options: EventBusModuleAsyncOptions): DynamicModule {
    return EventBusModule.create(EventBusModule.asyncOptionsProviders(options), options.imports);
  }

  private static create(optionsProviders: Provider[], imports: DynamicModule['imports'] = []): DynamicModule {
    return {
      module: EventBusModule,
      global: true,
      imports: [...imports, DomainEventHandlerLoaderModule],
      providers: [...optionsProviders, ...coreProviders],
      exports: [DomainEventBus, DeadLetters, EventOutbox, CqrsBridge, RESOLVED_EVENT_BUS_OPTIONS, EVENT_TRANSPORT],
    };
  }

  private static asyncOptionsProviders(options: EventBusModuleAsyncOptions): Provider[] {
    if (options.useFactory) {
      return [{ provide: EVENT_BUS_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
    }
    const factory = options.useClass ?? options.useExisting;
    if (!factory) throw new Error('EventBusModule.forRootAsync() needs useFactory, useClass or useExisting');
    const fromFactory: Provider = {
      provide: EVENT_BUS_MODULE_OPTIONS,
      useFactory: (f: EventBusOptionsFactory) => f.createEventBusOptions(),
      inject: [factory],
    };
    return options.useClass ? [{ provide: options.useClass, useClass: options.useClass }, fromFactory] : [fromFactory];
  }
}
