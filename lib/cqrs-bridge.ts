import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { LazyModuleLoader, ModuleRef } from '@nestjs/core';
import { CqrsModule, EventBus, type IEvent, type IEventPublisher } from '@nestjs/cqrs';
import { DomainEventBus } from './domain-event-bus.js';

/** Sends everything published through the CQRS EventBus (publish, publishAll, AggregateRoot.commit) through the distributed bus. */
class DistributingPublisher implements IEventPublisher {
  constructor(private readonly bus: DomainEventBus) {}

  publish<T extends IEvent>(event: T, ...args: unknown[]): void {
    this.bus.publishFromCqrs(event, args);
  }

  publishAll<T extends IEvent>(events: T[], ...args: unknown[]): void {
    for (const event of events) this.bus.publishFromCqrs(event, args);
  }
}

/**
 * Joins the application's one CQRS EventBus. When the application imports CqrsModule, its bus is
 * used; when it does not, CqrsModule is loaded here, so that there is exactly one EventBus either
 * way (importing CqrsModule.forRoot() from this module would create a second one beside the
 * application's, splitting the handlers).
 */
@Injectable()
export class CqrsBridge implements OnModuleInit {
  private readonly logger = new Logger('EventBus');
  private eventBus!: EventBus;
  private loadedCqrs?: CqrsModule;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly lazyModuleLoader: LazyModuleLoader,
    private readonly bus: DomainEventBus,
  ) {}

  async onModuleInit(): Promise<void> {
    this.eventBus = this.findEventBus() ?? (await this.loadCqrs());
    const eventBus = this.eventBus;
    const local = eventBus.publisher;
    // CQRS's own publisher only feeds the bus's subject: nothing receives it there while no handler or saga
    // observes that. Another publisher (the application's) may send elsewhere: always published to.
    const feedsSubject = (local as { subject$?: unknown }).subject$ === eventBus.subject$;
    this.bus.setLocalCqrs({
      dispatch: (event, args) => local.publish(event, ...(args as [])),
      listening: feedsSubject ? () => eventBus.subject$.observed : () => true,
    });
    this.eventBus.publisher = new DistributingPublisher(this.bus);
  }

  /** Registers CQRS handlers and sagas when this module had to load CqrsModule itself (lazy modules get no lifecycle hooks). */
  bootstrapLoadedCqrs(): void {
    this.loadedCqrs?.onApplicationBootstrap();
  }

  /**
   * Delivers a received event to CQRS handlers and sagas without publishing it again. CQRS
   * unsubscribes them when its module is destroyed: from then on an event fails here (a durable
   * transport redelivers it) rather than vanish unhandled.
   */
  readonly inject = (event: object): void => {
    const subject = this.eventBus.subject$;
    if (!subject.observed) throw new Error('the CQRS EventBus is shut down: its handlers and sagas no longer run');
    subject.next(event as IEvent);
  };

  private findEventBus(): EventBus | undefined {
    try {
      return this.moduleRef.get(EventBus, { strict: false });
    } catch {
      return undefined;
    }
  }

  private async loadCqrs(): Promise<EventBus> {
    this.logger.log('CqrsModule is not imported by the application: loading it');
    const moduleRef = await this.lazyModuleLoader.load(() => CqrsModule.forRoot());
    this.loadedCqrs = moduleRef.get(CqrsModule);
    return moduleRef.get(EventBus);
  }
}
