import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { CQRS_EVENTS_HANDLER_METADATA, CQRS_SAGA_METADATA, ON_DOMAIN_EVENT_METADATA } from './constants.js';
import { CqrsBridge } from './cqrs-bridge.js';
import { DomainEventContextCreator } from './domain-event-context-creator.js';
import { DomainEventBus } from './domain-event-bus.js';
import { eventRegistry, type Type } from './registry/event-registry.js';
import type { OnDomainEventMetadata } from './on-domain-event.decorator.js';

/**
 * Finds the handlers once every module is initialised and subscribes the bus to what they need:
 * each `@OnDomainEvent` method, and the registered events that CQRS `@EventsHandler` classes
 * handle (every event when the application has sagas, which may watch any type).
 * It lives in a non-global module so that its hook runs after CqrsModule has bound its handlers.
 */
@Injectable()
export class DomainEventHandlerLoader implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly moduleRef: ModuleRef,
    private readonly contexts: DomainEventContextCreator,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Looked up rather than injected: this module is an import of EventBusModule, which need not be global.
    const bus = this.moduleRef.get(DomainEventBus, { strict: false });
    const cqrs = this.moduleRef.get(CqrsBridge, { strict: false });
    cqrs.bootstrapLoadedCqrs();
    const wrappers = [...this.discovery.getProviders(), ...this.discovery.getControllers()];
    // An alias (useExisting) is the same instance under another token: its handlers are loaded once, under its own.
    for (const wrapper of wrappers) if (!wrapper.isAlias) this.loadMethods(bus, wrapper);
    this.loadCqrsHandlers(bus, cqrs, wrappers);
    await bus.activate();
  }

  private loadMethods(bus: DomainEventBus, wrapper: InstanceWrapper): void {
    const { instance, metatype } = wrapper;
    const prototype = instance && typeof instance === 'object' ? Object.getPrototypeOf(instance) : metatype?.prototype;
    if (!prototype || typeof prototype !== 'object') return;
    for (const name of this.scanner.getAllMethodNames(prototype)) {
      const metadata: OnDomainEventMetadata[] | undefined = Reflect.getMetadata(ON_DOMAIN_EVENT_METADATA, prototype[name]);
      if (!metadata) continue;
      const description = `${prototype.constructor.name}.${name}`;
      if (wrapper.isTransient || !instance) {
        throw new Error(`${description}: @OnDomainEvent needs a singleton or request-scoped provider; a transient one has no instance of its own to call`);
      }
      const handler = this.contexts.create(wrapper, name);
      for (const { pattern, options } of metadata) bus.addListener(pattern, { handler, description }, options);
    }
  }

  private loadCqrsHandlers(bus: DomainEventBus, cqrs: CqrsBridge, wrappers: InstanceWrapper[]): void {
    const types = new Set<Type>();
    let sagas = false;
    for (const { metatype } of wrappers) {
      if (!metatype) continue;
      const handled: Type[] | undefined = Reflect.getMetadata(CQRS_EVENTS_HANDLER_METADATA, metatype);
      handled?.forEach((type) => types.add(type));
      if (Reflect.getMetadata(CQRS_SAGA_METADATA, metatype)) sagas = true;
    }
    const listener = { handler: cqrs.inject, description: 'CQRS EventBus', remoteOnly: true };
    if (sagas) {
      bus.addListener('>', listener, {});
      return;
    }
    for (const type of types) {
      if (eventRegistry.eventByType(type)) bus.addListener(type, listener, {});
    }
  }
}
