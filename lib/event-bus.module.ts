import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { EVENT_BUS_MODULE_OPTIONS, EVENT_TRANSPORT, RESOLVED_EVENT_BUS_OPTIONS } from './constants.js';
import { CqrsBridge } from './cqrs-bridge.js';
import { DeadLetters } from './dead-letters.js';
import { DomainEventBus } from './domain-event-bus.js';
import { DomainEventContextCreator } from './domain-event-context-creator.js';
import { DomainEventHandlerLoader } from './domain-event-handler-loader.js';
import type { EventBusModuleAsyncOptions, EventBusModuleOptions, EventBusModuleRegistration, EventBusOptionsFactory } from './event-bus-options.js';
import { resolveEventBusOptions, type ResolvedEventBusOptions } from './resolve-options.js';
import { createTransport } from './create-transport.js';
import { EventBusHealthIndicator } from './event-bus-health.indicator.js';
import { EventOutbox, outboxOptionsProvider } from './outbox/event-outbox.js';

/** Holds the loader apart from EventBusModule (global by default): its bootstrap hook must run after CqrsModule's. */
@Module({ imports: [DiscoveryModule], providers: [DomainEventHandlerLoader, DomainEventContextCreator] })
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
  EventBusHealthIndicator,
  // Always provided: with forRootAsync the options are known only at run time; inert when not configured.
  outboxOptionsProvider,
  EventOutbox,
];

/**
 * Distributes domain events across the instances of an application. Import it once, in the root
 * module; global by default, so that `DomainEventBus` and the CQRS `EventBus` can be injected
 * anywhere (`global: false` limits it to the modules that import it).
 */
@Module({})
export class EventBusModule {
  static forRoot({ global, ...options }: EventBusModuleOptions & EventBusModuleRegistration = {}): DynamicModule {
    return EventBusModule.create({ global }, [{ provide: EVENT_BUS_MODULE_OPTIONS, useValue: options }]);
  }

  static forRootAsync(options: EventBusModuleAsyncOptions): DynamicModule {
    return EventBusModule.create(options, EventBusModule.asyncOptionsProviders(options), options.imports);
  }

  private static create({ global = true }: EventBusModuleRegistration, optionsProviders: Provider[], imports: DynamicModule['imports'] = []): DynamicModule {
    return {
      module: EventBusModule,
      global,
      imports: [...imports, DomainEventHandlerLoaderModule],
      providers: [...optionsProviders, ...coreProviders],
      exports: [DomainEventBus, DeadLetters, EventOutbox, EventBusHealthIndicator, CqrsBridge, RESOLVED_EVENT_BUS_OPTIONS, EVENT_TRANSPORT],
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
