import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { ModulesContainer, NestFactory } from '@nestjs/core';
import { CqrsModule, EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import {
  DomainEvent,
  DomainEventBus,
  EventBusModule,
  MemoryBroker,
  MemoryTransport,
  OnDomainEvent,
  registerTransport,
  RESOLVED_EVENT_BUS_OPTIONS,
  type EventBusModuleOptions,
  type TransportContext,
  type EventContext,
  type ResolvedEventBusOptions,
  type MessageHeaders,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';

@DomainEvent('ModuleSpecEvent')
class ModuleSpecEvent {
  constructor(readonly n: number) {}
}

class NotADomainEvent {}

@DomainEvent('ModuleSpecOther')
class ModuleSpecOther {}

const calls: string[] = [];

@Injectable()
class Handlers {
  @OnDomainEvent(ModuleSpecEvent)
  on(event: ModuleSpecEvent, context: EventContext) {
    calls.push(`on:${event.n}:${context.local}`);
  }
}

@EventsHandler(ModuleSpecEvent, NotADomainEvent)
class CqrsHandler implements IEventHandler<object> {
  handle(event: object) {
    calls.push(`cqrs:${event instanceof ModuleSpecEvent ? event.n : event.constructor.name}`);
  }
}

@Injectable()
class OptionsFactory {
  createEventBusOptions(): EventBusModuleOptions {
    return { instanceId: 'from-class', memory: { broker: new MemoryBroker() } };
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class ConfigModule {}

async function boot(imports: NonNullable<Parameters<typeof Module>[0]['imports']>): Promise<INestApplicationContext> {
  @Module({ imports, providers: [Handlers, CqrsHandler] })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false });
}

function eventBuses(app: INestApplicationContext): Set<unknown> {
  const buses = new Set<unknown>();
  for (const moduleRef of app.get(ModulesContainer).values()) {
    const wrapper = moduleRef.providers.get(EventBus);
    if (wrapper?.instance) buses.add(wrapper.instance);
  }
  return buses;
}

const settle = () => new Promise((r) => setImmediate(r));

describe('EventBusModule', () => {
  let app: INestApplicationContext | undefined;
  beforeEach(() => calls.splice(0));
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it.each([
    ['with CqrsModule.forRoot() imported by the application', true],
    ['without CqrsModule', false],
  ])('has exactly one CQRS EventBus, %s, and runs each handler once', async (_case, importCqrs) => {
    const bus = EventBusModule.forRoot({ memory: { broker: new MemoryBroker(), codec: true } });
    app = await boot(importCqrs ? [CqrsModule.forRoot(), bus] : [bus]);
    expect(eventBuses(app).size).toBe(1);
    await app.get(DomainEventBus).publish(new ModuleSpecEvent(1));
    app.get(EventBus, { strict: false }).publish(new ModuleSpecEvent(2));
    await settle();
    expect(calls.sort()).toEqual(['cqrs:1', 'cqrs:2', 'on:1:true', 'on:2:true']);
  });

  it.each([
    ['useFactory', { imports: [ConfigModule], inject: [OptionsFactory], useFactory: (f: OptionsFactory) => ({ ...f.createEventBusOptions(), instanceId: 'from-factory' }) }, 'from-factory'],
    ['useClass', { useClass: OptionsFactory }, 'from-class'],
    ['useExisting', { imports: [ConfigModule], useExisting: OptionsFactory }, 'from-class'],
  ])('forRootAsync with %s', async (_how, options, instanceId) => {
    app = await boot([EventBusModule.forRootAsync(options)]);
    expect(app.get<ResolvedEventBusOptions>(RESOLVED_EVENT_BUS_OPTIONS).instanceId).toBe(instanceId);
    expect(app.get(DomainEventBus).status()).toMatchObject({ instanceId, ready: true, transport: { transport: 'memory', connected: true } });
  });

  it('rejects forRootAsync without a factory', () => {
    expect(() => EventBusModule.forRootAsync({})).toThrow('needs useFactory, useClass or useExisting');
  });

  it('keeps an event without @DomainEvent local when it goes through CQRS, and rejects it from DomainEventBus', async () => {
    app = await boot([EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })]);
    app.get(EventBus, { strict: false }).publish(new NotADomainEvent());
    await settle();
    expect(calls).toEqual(['cqrs:NotADomainEvent']);
    await expect(app.get(DomainEventBus).publish(new NotADomainEvent())).rejects.toThrow('NotADomainEvent is not a domain event: decorate its class with @DomainEvent()');
    await expect(app.get(DomainEventBus).publishAll([new ModuleSpecEvent(3), new NotADomainEvent()])).rejects.toThrow('NotADomainEvent');
    await settle();
    expect(calls).toEqual(['cqrs:NotADomainEvent']); // publishAll sent nothing
  });

  it('rejects a routing key that is not a subject token, and publishing after shutdown', async () => {
    app = await boot([EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })]);
    const bus = app.get(DomainEventBus);
    await expect(bus.publish(new ModuleSpecEvent(4), { key: 'a.b' })).rejects.toThrow('routing key "a.b" must not contain');
    await app.close();
    app = undefined;
    await expect(bus.publish(new ModuleSpecEvent(5))).rejects.toThrow('the event bus is shut down');
  });

  it('fails a remote event for CQRS handlers once CQRS has shut them down, rather than drop it', async () => {
    const broker = new MemoryBroker();
    const receiver = await boot([CqrsModule.forRoot(), EventBusModule.forRoot({ memory: { broker, codec: true } })]);
    const sender = await boot([CqrsModule.forRoot(), EventBusModule.forRoot({ memory: { broker, codec: true } })]);
    try {
      receiver.get(EventBus).onModuleDestroy(); // what CQRS does first when its module is destroyed
      await sender.get(DomainEventBus).publish(new ModuleSpecEvent(7));
      const stats = () => receiver.get(DomainEventBus).status().stats;
      await eventually(() => expect(stats()).toMatchObject({ received: 1, handlerErrors: 1 }));
    } finally {
      await Promise.all([receiver.close(), sender.close()]);
    }
  });

  it('rejects a publish whose id or subject would not survive the wire, saying what to change', async () => {
    app = await boot([EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })]);
    const bus = app.get(DomainEventBus);
    await expect(bus.publish(new ModuleSpecEvent(7), { id: '' })).rejects.toThrow(
      'ModuleSpecEvent: publish option id "" is empty: pass a non-empty id of at most 256 characters without control characters, or none for a generated one',
    );
    await expect(bus.publish(new ModuleSpecEvent(7), { id: 'x'.repeat(257) })).rejects.toThrow('is 257 characters long; at most 256 are allowed');
    await expect(bus.publish(new ModuleSpecEvent(7), { key: 'k'.repeat(5_000) })).rejects.toThrow(/the subject "events\.domain\.ModuleSpecEvent\.k+…" is 5030 bytes; a NATS subject may be at most 3584 bytes/);
    expect(() => bus.subscribe(ModuleSpecEvent, () => undefined, { key: 'k'.repeat(5_000) })).toThrow(/at most 3584 bytes.*use a shorter key/);
    expect(() => bus.subscribe(ModuleSpecEvent, () => undefined, { group: 'g'.repeat(129) })).toThrow(/group "g+" must be at most 128 characters/);
    await settle();
    expect(calls).toEqual([]);
    expect(bus.status().stats.publishErrors).toBe(3);
  });

  it('runs the codec in memory as on the wire: a type forged on another type\'s subject is refused and counted', async () => {
    const broker = new MemoryBroker();
    app = await boot([EventBusModule.forRoot({ memory: { broker, codec: true } })]);
    const forged = { specversion: '1.0', id: 'f-1', source: '/mallory', type: ModuleSpecOther.name, data: { n: 66 } };
    broker.publish('events.domain.ModuleSpecEvent', new TextEncoder().encode(JSON.stringify(forged)), undefined, {});
    broker.publish('events.domain.ModuleSpecEvent', new TextEncoder().encode(JSON.stringify({ ...forged, type: 'ModuleSpecEvent', id: 'ok-1', data: { n: 67 } })), undefined, {});
    await broker.idle();
    expect(calls).toEqual(['on:67:false', 'cqrs:67']);
    expect(app.get(DomainEventBus).status().stats.decodeErrors).toBe(1);
  });

  it('publishes and reads binary-mode CloudEvents in memory through the codec', async () => {
    const broker = new MemoryBroker();
    const options = { memory: { broker, codec: true }, cloudEvents: { mode: 'binary' as const } };
    app = await boot([EventBusModule.forRoot({ ...options, instanceId: 'binary-a' })]);
    const other = await boot([EventBusModule.forRoot({ ...options, instanceId: 'binary-b' })]);
    try {
      await app.get(DomainEventBus).publish(new ModuleSpecEvent(8));
      await broker.idle();
      expect(calls.sort()).toEqual(['cqrs:8', 'cqrs:8', 'on:8:false', 'on:8:true']);
      expect(other.get(DomainEventBus).status().stats).toMatchObject({ received: 1, decodeErrors: 0 });
    } finally {
      await other.close();
    }
  });

  it('fails at startup for binary mode on a transport that carries no headers, naming the option', async () => {
    class HeaderlessTransport extends MemoryTransport {
      override readonly carriesHeaders = false;
    }
    @Module({ imports: [EventBusModule.forRoot({ transport: new HeaderlessTransport(new MemoryBroker(), true), cloudEvents: { mode: 'binary' } })] })
    class HeaderlessModule {}
    await expect(NestFactory.createApplicationContext(HeaderlessModule, { logger: false, abortOnError: false })).rejects.toThrow(
      'option cloudEvents.mode or environment variable EVENT_BUS_CLOUDEVENTS_MODE: binary mode needs a transport that carries headers; memory does not',
    );
  });

  it('fails at startup for a handler whose subject is too long for NATS', async () => {
    @Injectable()
    class LongKey {
      @OnDomainEvent(ModuleSpecEvent, { key: 'k'.repeat(4_000) })
      on() {}
    }
    @Module({ imports: [EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })], providers: [LongKey] })
    class LongKeyModule {}
    await expect(NestFactory.createApplicationContext(LongKeyModule, { logger: false, abortOnError: false })).rejects.toThrow(
      /LongKey\.on: the subject "events\.domain\.ModuleSpecEvent\.k+…" is 4030 bytes/,
    );
  });

  it('fails at startup for a handler of an unregistered name', async () => {
    @Injectable()
    class Misnamed {
      @OnDomainEvent('NoSuchEvent')
      on() {}
    }
    @Module({ imports: [EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })], providers: [Misnamed] })
    class BadModule {}
    await expect(NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false })).rejects.toThrow(
      'Misnamed.on: no @DomainEvent class is registered as "NoSuchEvent"',
    );
  });
});

describe('EventBusModule with a transport of the application', () => {
  /** A memory transport under another name, recording what it was created from. */
  class OwnTransport extends MemoryTransport {
    constructor(readonly context?: TransportContext) {
      super(new MemoryBroker(), true);
    }
  }
  let app: INestApplicationContext | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    calls.splice(0);
  });

  it.each([
    ['an instance', () => new OwnTransport()],
    ['a factory', () => (context: TransportContext) => new OwnTransport(context)],
  ])('takes %s in forRoot({ transport })', async (_how, transport) => {
    app = await boot([EventBusModule.forRoot({ transport: transport(), instanceId: 'own-1', subjectPrefix: 'own.events' })]);
    await app.get(DomainEventBus).publish(new ModuleSpecEvent(6));
    await settle();
    expect(calls).toEqual(['cqrs:6', 'on:6:true']);
  });

  it('tells the transport which ids it made for the publish (newId), and which were given', async () => {
    const sent: [string, boolean | undefined][] = [];
    class RecordingTransport extends OwnTransport {
      override publish(subject: string, payload: Uint8Array, id: string, headers?: MessageHeaders, newId?: boolean) {
        sent.push([id, newId]);
        return super.publish(subject, payload, id, headers);
      }
    }
    app = await boot([EventBusModule.forRoot({ transport: new RecordingTransport(), instanceId: 'own-3' })]);
    const bus = app.get(DomainEventBus);
    await bus.publish(new ModuleSpecEvent(7));
    await bus.publish(new ModuleSpecEvent(8), { id: 'given-8' });
    expect(sent.map(([, newId]) => newId)).toEqual([true, false]);
    expect(sent[1][0]).toBe('given-8');
  });

  it('gives a factory the settings and the sections of the options it owns', () => {
    const seen: TransportContext[] = [];
    const options = { transport: (c: TransportContext) => (seen.push(c), new OwnTransport(c)), instanceId: 'own-2', own: { url: 'x://y' } };
    return boot([EventBusModule.forRoot(options as EventBusModuleOptions)]).then(async (booted) => {
      app = booted;
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ instanceId: 'own-2', subjectPrefix: 'events.domain' });
      expect(seen[0].section('own')).toEqual({ url: 'x://y' });
      expect(seen[0].retry.options.attempts).toBe(5);
    });
  });

  it('selects a registered transport by name, from code or EVENT_BUS_TRANSPORT', async () => {
    registerTransport('own-memory', (context) => new OwnTransport(context));
    expect(() => registerTransport('own-memory', () => new OwnTransport())).toThrow('a transport named "own-memory" is registered already');
    expect(() => registerTransport('bad.name', () => new OwnTransport())).toThrow('registerTransport("bad.name"): the name must not contain');
    process.env.EVENT_BUS_TRANSPORT = 'own-memory';
    try {
      app = await boot([EventBusModule.forRoot({})]);
    } finally {
      delete process.env.EVENT_BUS_TRANSPORT;
    }
    expect(app.get(DomainEventBus).status().transport).toMatchObject({ transport: 'memory', connected: true });
    expect(app.get<ResolvedEventBusOptions>(RESOLVED_EVENT_BUS_OPTIONS).transport).toBe('own-memory');
  });
});

describe('EventBusModule global option', () => {
  @Injectable()
  class Publisher {
    constructor(readonly bus: DomainEventBus) {}
  }
  @Injectable()
  class OtherPublisher {
    constructor(readonly bus: DomainEventBus) {}
  }
  let app: INestApplicationContext | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const start = (module: NonNullable<Parameters<typeof Module>[0]['imports']>[number], feature: NonNullable<Parameters<typeof Module>[0]['imports']>) => {
    @Module({ imports: [module, ...feature] })
    class AppModule {}
    return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
  };

  it.each([
    ['forRoot', () => EventBusModule.forRoot({ global: false, memory: { broker: new MemoryBroker() } })],
    ['forRootAsync', () => EventBusModule.forRootAsync({ global: false, useFactory: () => ({ memory: { broker: new MemoryBroker() } }) })],
  ])('with global: false (%s), makes the bus injectable only in modules that import it', async (_how, eventBusModule) => {
    const bus = eventBusModule();
    @Module({ imports: [bus], providers: [Publisher] })
    class Importing {}
    @Module({ providers: [OtherPublisher] })
    class NotImporting {}
    app = await start(bus, [Importing]);
    expect(app.get(Publisher).bus).toBe(app.get(DomainEventBus, { strict: false }));
    await app.close();
    app = undefined;
    await expect(start(bus, [Importing, NotImporting])).rejects.toThrow(/OtherPublisher.*DomainEventBus/s);
  });

  it('is global by default', async () => {
    @Module({ providers: [OtherPublisher] })
    class NotImporting {}
    app = await start(EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } }), [NotImporting]);
    expect(app.get(OtherPublisher).bus).toBeInstanceOf(DomainEventBus);
  });
});
