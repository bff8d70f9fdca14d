import 'reflect-metadata';
import {
  Catch,
  Injectable,
  Module,
  UseFilters,
  UseInterceptors,
  type CallHandler,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplicationContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { EventEmitter2, EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { DomainEventBus, EventBusModule, MemoryBroker, OnDomainEvent } from '../lib/index.js';
import { PlayerMoved, playerMoved } from './bench-event.js';

/** Counts deliveries and resolves when a burst has fully arrived (CQRS handlers run asynchronously). */
class Counter {
  count = 0;
  private target = 0;
  private done?: () => void;

  expect(n: number): Promise<void> {
    this.count = 0;
    this.target = n;
    return new Promise((resolve) => (this.done = resolve));
  }

  hit(): void {
    if (++this.count === this.target) this.done?.();
  }
}

const counter = new Counter();

@Injectable()
class DomainHandler {
  @OnDomainEvent('PlayerMoved')
  on(_event: PlayerMoved) {
    counter.hit();
  }
}

@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle();
  }
}

@Catch()
class RethrowingFilter implements ExceptionFilter {
  catch(error: unknown) {
    throw error;
  }
}

/** The same handler behind an interceptor: what Nest's enhancers cost per event. */
@Injectable()
class InterceptedDomainHandler {
  @OnDomainEvent('PlayerMoved')
  @UseInterceptors(PassThroughInterceptor)
  on(_event: PlayerMoved) {
    counter.hit();
  }
}

/** Behind an exception filter only: the enhancer machinery with no interceptor in it. */
@Injectable()
class FilteredDomainHandler {
  @OnDomainEvent('PlayerMoved')
  @UseFilters(RethrowingFilter)
  on(_event: PlayerMoved) {
    counter.hit();
  }
}

@Injectable()
class EmitterHandler {
  @OnEvent('PlayerMoved')
  on(_event: PlayerMoved) {
    counter.hit();
  }
}

@EventsHandler(PlayerMoved)
class CqrsHandler implements IEventHandler<PlayerMoved> {
  handle() {
    counter.hit();
  }
}

const ours = (handler: Type) => ({ module: class OursModule {}, imports: [EventBusModule.forRoot({ memory: { broker: new MemoryBroker() } })], providers: [handler] });

@Module({ imports: [EventEmitterModule.forRoot()], providers: [EmitterHandler] })
class EmitterModule {}

@Module({ imports: [CqrsModule.forRoot()], providers: [CqrsHandler] })
class PlainCqrsModule {}

export type InProcessBus = 'ours' | 'ours-intercepted' | 'ours-filtered' | 'event-emitter' | 'cqrs';

/** One application per bus, with one handler; `burst(n)` publishes n events and resolves with events/s. */
export class InProcessTarget {
  private constructor(
    private readonly app: INestApplicationContext,
    private readonly publish: (event: PlayerMoved) => unknown,
  ) {}

  static async start(bus: InProcessBus): Promise<InProcessTarget> {
    const module = {
      ours: ours(DomainHandler),
      'ours-intercepted': ours(InterceptedDomainHandler),
      'ours-filtered': ours(FilteredDomainHandler),
      'event-emitter': EmitterModule,
      cqrs: PlainCqrsModule,
    }[bus];
    const app = await NestFactory.createApplicationContext(module, { logger: false });
    // Each bus looked up once, as an application injects it.
    let publish: (e: PlayerMoved) => unknown;
    if (bus === 'event-emitter') {
      const emitter = app.get(EventEmitter2);
      publish = (e) => emitter.emit('PlayerMoved', e);
    } else if (bus === 'cqrs') {
      const eventBus = app.get(EventBus);
      publish = (e) => eventBus.publish(e);
    } else {
      const domainBus = app.get(DomainEventBus);
      publish = (e) => domainBus.publish(e);
    }
    return new InProcessTarget(app, publish);
  }

  /**
   * Events/s over bursts of n events, each awaited until delivered. Small bursts are repeated up to
   * 100,000 events, so that a figure is never a fraction of a millisecond of timer noise.
   */
  async burst(n: number): Promise<number> {
    const event = playerMoved(0);
    const bursts = Math.max(1, Math.ceil(100_000 / n));
    const start = performance.now();
    for (let b = 0; b < bursts; b++) {
      const arrived = counter.expect(n);
      for (let i = 0; i < n; i++) this.publish(event);
      await arrived;
    }
    return (n * bursts) / ((performance.now() - start) / 1000);
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

/** Scenario 6: memory after a million events through one instance, and after a GC. */
export async function memoryAfter(n: number): Promise<{ rssBeforeMb: number; rssPeakMb: number; heapAfterMb: number; heapBeforeMb: number; rssAfterGcMb: number }> {
  const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  const target = await InProcessTarget.start('ours');
  global.gc?.();
  const before = process.memoryUsage();
  let peak = before.rss;
  for (let done = 0; done < n; done += 100_000) {
    await target.burst(100_000);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  global.gc?.();
  const after = process.memoryUsage();
  await target.close();
  return { rssBeforeMb: mb(before.rss), rssPeakMb: mb(peak), heapBeforeMb: mb(before.heapUsed), heapAfterMb: mb(after.heapUsed), rssAfterGcMb: mb(after.rss) };
}
