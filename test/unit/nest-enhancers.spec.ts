import 'reflect-metadata';
import {
  Catch,
  Inject,
  Injectable,
  Module,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplicationContext,
  type NestInterceptor,
} from '@nestjs/common';
import { ContextIdFactory, NestFactory, REQUEST, type ContextId, type ContextIdStrategy, type HostComponentInfo } from '@nestjs/core';
import { ClsModule, ClsService } from 'nestjs-cls-esm'; // nestjs-cls 7 (ES module, as Nest 12): the Jest ESM runtime cannot require Nest 12 from nestjs-cls 6
import { finalize } from 'rxjs';
import {
  DOMAIN_EVENT_CONTEXT,
  DomainEvent,
  DomainEventBus,
  EventBusModule,
  EventContext,
  MemoryBroker,
  OnDomainEvent,
  type DomainEventContextType,
  type DomainEventRequest,
  type EventBusModuleOptions,
} from '../../lib/index.js';
import { eventually } from '../support/instances.js';
import { NatsServer } from '../support/nats-server.js';

@DomainEvent('EnhancedEvent')
class EnhancedEvent {
  constructor(
    readonly n: number,
    readonly tenant = 'a',
  ) {}
}

let calls: string[] = [];

/** Measures each handler run, and notes what kind of context it ran in. */
@Injectable()
class TimingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    const [event, eventContext] = context.getArgs();
    const start = performance.now();
    calls.push(`timing:start:${context.getType()}:${event instanceof EnhancedEvent}:${eventContext instanceof EventContext}`);
    return next.handle().pipe(finalize(() => calls.push(`timing:done:${performance.now() - start >= 0}`)));
  }
}

@Catch()
class RecordingFilter implements ExceptionFilter {
  catch(error: Error, host: ArgumentsHost) {
    const [event, context] = host.getArgs<[EnhancedEvent, EventContext]>();
    calls.push(`filter:${host.getType()}:${error.message}:${event.n}:${context.attempt}`);
    return 'handled'; // a filter that returns a value must not turn the failure into a success
  }
}

class DenyGuard implements CanActivate {
  canActivate(context: ExecutionContext) {
    calls.push(`guard:${context.getType()}`);
    return false;
  }
}

@Injectable()
@UseInterceptors(TimingInterceptor)
class InterceptedHandlers {
  constructor(private readonly cls: ClsService) {}

  @OnDomainEvent(EnhancedEvent)
  async onEvent(event: EnhancedEvent, context: EventContext) {
    await new Promise((r) => setTimeout(r, 5));
    calls.push(`handler:${event.n}:cls=${this.cls.get('eventId') === context.id}`);
  }
}

@Injectable()
class FilteredHandlers {
  @OnDomainEvent(EnhancedEvent)
  @UseFilters(RecordingFilter)
  fails(event: EnhancedEvent) {
    if (event.n === 13) throw new Error('unlucky on purpose');
  }

  @OnDomainEvent(EnhancedEvent)
  @UseGuards(DenyGuard)
  guarded() {
    calls.push('guarded handler ran');
  }
}

/** Where a handler is called from: directly by the bus, or through Nest's context creator. */
const callers: Record<string, boolean> = {};
const throughNest = () => new Error().stack!.includes('external-context-creator');

@Injectable()
class PlainHandlers {
  @OnDomainEvent(EnhancedEvent)
  plain() {
    callers.plain = throughNest();
  }

  @OnDomainEvent(EnhancedEvent)
  @UseFilters(RecordingFilter)
  filtered() {
    callers.filtered = throughNest();
  }

  @OnDomainEvent(EnhancedEvent)
  @UseInterceptors(TimingInterceptor)
  intercepted() {
    callers.intercepted = throughNest();
  }
}

const moduleOptions = (): EventBusModuleOptions => ({ memory: { broker: new MemoryBroker(), codec: true } });

async function boot(providers: NonNullable<Parameters<typeof Module>[0]['providers']>, bus = moduleOptions(), imports: unknown[] = []) {
  @Module({ imports: [...(imports as []), EventBusModule.forRoot(bus)], providers })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false });
}

let app: INestApplicationContext | undefined;
beforeEach(() => {
  calls = [];
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('@OnDomainEvent methods run through Nest enhancers', () => {
  it('runs global (CLS) and class interceptors, with the "domain-event" context type and [event, context] as arguments', async () => {
    const cls = ClsModule.forRoot({
      global: true,
      interceptor: {
        mount: true,
        setup: (service: ClsService, context: ExecutionContext) => {
          if (context.getType<DomainEventContextType>() === DOMAIN_EVENT_CONTEXT) service.set('eventId', context.getArgs<[object, EventContext]>()[1].id);
        },
      },
    });
    app = await boot([InterceptedHandlers], moduleOptions(), [cls]);
    await app.get(DomainEventBus).publish(new EnhancedEvent(1));
    expect(calls).toEqual(['timing:start:domain-event:true:true', 'handler:1:cls=true', 'timing:done:true']);
  });

  it('shows a failure to the exception filters and still counts it as a failure; a guard that denies stops the handler', async () => {
    app = await boot([FilteredHandlers]);
    const bus = app.get(DomainEventBus);
    await bus.publish(new EnhancedEvent(13));
    expect(calls.sort()).toEqual(['filter:domain-event:unlucky on purpose:13:1', 'guard:domain-event']);
    expect(bus.status().stats.handlerErrors).toBe(2); // the failing handler and the denied one
  });

  it('calls a handler directly when nothing but filters applies to it, and through Nest when guards or interceptors do', async () => {
    app = await boot([PlainHandlers]);
    await app.get(DomainEventBus).publish(new EnhancedEvent(2));
    expect(callers).toEqual({ plain: false, filtered: false, intercepted: true });
  });
});

let nextInstance = 0;

@Injectable({ scope: Scope.REQUEST })
class PerEventHandler {
  readonly instance = nextInstance++;

  constructor(@Inject(REQUEST) private readonly request: DomainEventRequest) {}

  @OnDomainEvent(EnhancedEvent)
  @UseInterceptors(TimingInterceptor)
  on(event: EnhancedEvent, context: EventContext) {
    calls.push(`per-event:${event.n}:instance ${this.instance}:${this.request.event === event && this.request.context === context}`);
  }
}

@Injectable({ scope: Scope.REQUEST, durable: true })
class PerTenantHandler {
  readonly instance = nextInstance++;

  @OnDomainEvent(EnhancedEvent)
  on(event: EnhancedEvent) {
    calls.push(`tenant ${event.tenant}:instance ${this.instance}`);
  }
}

/** Durable providers per tenant, as Nest's documentation shows for HTTP, with the tenant taken from the event. */
class TenantStrategy implements ContextIdStrategy<DomainEventRequest> {
  private readonly tenants = new Map<string, ContextId>();

  attach(contextId: ContextId, request: DomainEventRequest) {
    const tenant = (request.event as EnhancedEvent).tenant;
    let tenantId = this.tenants.get(tenant);
    if (!tenantId) this.tenants.set(tenant, (tenantId = ContextIdFactory.create()));
    return (info: HostComponentInfo) => (info.isTreeDurable ? tenantId : contextId);
  }
}

describe('request-scoped @OnDomainEvent providers', () => {
  afterEach(() => ContextIdFactory.apply(undefined as unknown as ContextIdStrategy));

  it('get an instance per event, with the event as their REQUEST, and their interceptors', async () => {
    app = await boot([PerEventHandler]);
    const bus = app.get(DomainEventBus);
    await bus.publish(new EnhancedEvent(1));
    await bus.publish(new EnhancedEvent(2));
    const runs = calls.filter((c) => c.startsWith('per-event'));
    expect(runs).toHaveLength(2);
    expect(runs.every((c) => c.endsWith(':true'))).toBe(true);
    expect(new Set(runs.map((c) => c.split(':')[2])).size).toBe(2);
    expect(calls.filter((c) => c.startsWith('timing:start'))).toHaveLength(2);
  });

  it('durable ones are shared by the events a ContextIdStrategy puts in one sub-tree (per tenant)', async () => {
    ContextIdFactory.apply(new TenantStrategy());
    app = await boot([PerTenantHandler]);
    const bus = app.get(DomainEventBus);
    for (const tenant of ['a', 'b', 'a', 'b']) await bus.publish(new EnhancedEvent(1, tenant));
    const instanceOf = (tenant: string) => new Set(calls.filter((c) => c.startsWith(`tenant ${tenant}`)).map((c) => c.split(':')[1]));
    expect(calls).toHaveLength(4);
    expect(instanceOf('a').size).toBe(1);
    expect(instanceOf('b').size).toBe(1);
    expect([...instanceOf('a')]).not.toEqual([...instanceOf('b')]);
  });

  it('are refused when transient, naming the method', async () => {
    @Injectable({ scope: Scope.TRANSIENT })
    class Transient {
      @OnDomainEvent(EnhancedEvent)
      on() {}
    }
    await expect(boot([Transient])).rejects.toThrow('Transient.on: @OnDomainEvent needs a singleton or request-scoped provider');
  });
});

/** On JetStream a failure the filter saw is retried: the filter sees attempt 1, the handler succeeds on attempt 2. */
@Injectable()
class FlakyHandler {
  @OnDomainEvent(EnhancedEvent, { group: 'flaky-filtered', attempts: 3 })
  @UseFilters(RecordingFilter)
  on(event: EnhancedEvent, context: EventContext) {
    calls.push(`flaky:${event.n}:${context.attempt}`);
    if (context.attempt === 1) throw new Error('first attempt fails on purpose');
  }
}

describe('a filtered handler failure on JetStream', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(() => server.dispose());

  it('is retried', async () => {
    app = await boot([FlakyHandler], { transport: 'jetstream', nats: { servers: server.url }, retry: { initialDelayMs: 50 } });
    await app.get(DomainEventBus).publish(new EnhancedEvent(7));
    await eventually(() => expect(calls).toEqual(['flaky:7:1', 'filter:domain-event:first attempt fails on purpose:7:1', 'flaky:7:2']));
  });
});
