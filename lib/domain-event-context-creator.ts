import { Injectable, Logger } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { ContextIdFactory, ExternalContextCreator, ModuleRef } from '@nestjs/core';
import type { ExternalExceptionsHandler } from '@nestjs/core/exceptions/external-exceptions-handler.js';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { ContextId, InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { Injector } from '@nestjs/core/injector/injector.js';
import type { EventContext } from './event-context.js';
import type { DomainEventHandler } from './listener-sets.js';

/** What `ExecutionContext.getType()` returns in guards, interceptors and filters around an `@OnDomainEvent` method. */
export const DOMAIN_EVENT_CONTEXT = 'domain-event';
export type DomainEventContextType = typeof DOMAIN_EVENT_CONTEXT;

/**
 * The "request" of a request-scoped handler: `@Inject(REQUEST)` in its providers, and what a
 * `ContextIdStrategy` is given (to share durable providers per tenant, say).
 */
export interface DomainEventRequest {
  readonly event: object;
  readonly context: EventContext;
}

type Method = (...args: unknown[]) => unknown;

/** Enhancers that apply to a handler: the global ones and what decorators put on its class and method. */
interface EnhancerSource {
  getGlobalMetadata(): unknown[];
}

/**
 * The context creators of ExternalContextCreator (private members, the same in Nest 11 and 12):
 * which enhancers are global, and the exception filters of a handler, which run here rather than in
 * create(), so that a filter sees the failure without swallowing it.
 */
interface ExternalContextCreatorParts {
  readonly guardsContextCreator: EnhancerSource;
  readonly interceptorsContextCreator: EnhancerSource;
  readonly filtersContextCreator: EnhancerSource & {
    create(instance: object, callback: Method, moduleKey: string, contextId?: ContextId, inquirerId?: string): ExternalExceptionsHandler;
  };
}

const ENHANCERS_WITHOUT_FILTERS = { guards: true, interceptors: true, filters: false };

/**
 * Makes the callable of an `@OnDomainEvent` method, as Nest does for its own transports: guards,
 * interceptors and exception filters (global, class and method) run around it, with
 * `getType() === 'domain-event'` and `getArgs()` = `[event, context]`. What applies is found once:
 * a method with no enhancers is called directly, one with filters only is called directly too,
 * its failures shown to them. A request-scoped provider (or one that depends on one) gets an
 * instance per event. A failure stays a failure after the filters saw it: it is counted, logged,
 * and retried by a durable transport.
 */
@Injectable()
export class DomainEventContextCreator {
  private readonly logger = new Logger('EventBus');
  private readonly injector = new Injector();
  private readonly parts: ExternalContextCreatorParts;

  constructor(
    private readonly externalContextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
  ) {
    const parts = externalContextCreator as unknown as Partial<ExternalContextCreatorParts>;
    if (!parts.guardsContextCreator || !parts.interceptorsContextCreator || typeof parts.filtersContextCreator?.create !== 'function') {
      throw new Error('nestjs-domain-events does not support this version of @nestjs/core: its ExternalContextCreator has changed');
    }
    this.parts = parts as ExternalContextCreatorParts;
  }

  create(wrapper: InstanceWrapper, methodName: string): DomainEventHandler {
    if (!wrapper.isDependencyTreeStatic()) return this.perEvent(wrapper, methodName);
    const instance = wrapper.instance as Record<string, Method>;
    const method = instance[methodName];
    const { guardsContextCreator, interceptorsContextCreator, filtersContextCreator } = this.parts;
    const around = this.applies(guardsContextCreator, GUARDS_METADATA, instance, method) || this.applies(interceptorsContextCreator, INTERCEPTORS_METADATA, instance, method);
    const filtered = this.applies(filtersContextCreator, EXCEPTION_FILTERS_METADATA, instance, method);
    if (around) return this.enhanced(instance, methodName, wrapper.host!.token, filtered);
    if (!filtered) return method.bind(instance);
    const filters = filtersContextCreator.create(instance, method, wrapper.host!.token);
    return (event: object, context: EventContext) => {
      let result: unknown;
      try {
        result = method.call(instance, event, context);
      } catch (error) {
        return this.filter(filters, error, event, context);
      }
      if (!isThenable(result)) return result;
      return result.then(undefined, (error: unknown) => this.filter(filters, error, event, context));
    };
  }

  /** An instance of the provider's own per event (its dependencies as the scope says), with its enhancers. */
  private perEvent(wrapper: InstanceWrapper, methodName: string): DomainEventHandler {
    const host = wrapper.host!;
    return async (event: object, context: EventContext) => {
      const request: DomainEventRequest = { event, context };
      const contextId = ContextIdFactory.getByRequest(request);
      this.moduleRef.registerRequestByContextId(request, contextId);
      const instance = await this.injector.loadPerContext(wrapper.instance, host, host.providers, contextId, wrapper);
      return this.enhanced(instance as Record<string, Method>, methodName, host.token, true, contextId, wrapper.id)(event, context);
    };
  }

  /** Through ExternalContextCreator: guards, then interceptors around the method; then the filters, if any. */
  private enhanced(instance: Record<string, Method>, methodName: string, moduleKey: string, filtered: boolean, contextId?: ContextId, inquirerId?: string): DomainEventHandler {
    const method = instance[methodName];
    const run = this.externalContextCreator.create(
      instance,
      method,
      methodName,
      undefined,
      undefined,
      contextId,
      inquirerId,
      ENHANCERS_WITHOUT_FILTERS,
      DOMAIN_EVENT_CONTEXT,
    );
    if (!filtered) return run;
    const filters = this.parts.filtersContextCreator.create(instance, method, moduleKey, contextId, inquirerId);
    return (event: object, context: EventContext) => run(event, context).catch((error: unknown) => this.filter(filters, error, event, context));
  }

  /** Shows the failure to the filters; it stays the handler's failure, whatever they return or throw. */
  private async filter(filters: ExternalExceptionsHandler, error: unknown, event: object, context: EventContext): Promise<never> {
    const host = new ExecutionContextHost([event, context]);
    host.setType(DOMAIN_EVENT_CONTEXT);
    try {
      await filters.invokeCustomFilters(error, host);
    } catch (filterError) {
      if (filterError !== error) {
        const err = filterError instanceof Error ? filterError : new Error(String(filterError));
        this.logger.error(`an exception filter failed on ${context.type} ${context.id}: ${err.message}`, err.stack);
      }
    }
    throw error;
  }

  /** Whether enhancers of a kind apply to the method: global ones, or ones its class or the method itself declares. */
  private applies(source: EnhancerSource, metadataKey: string, instance: object, method: Method): boolean {
    const declared = (target: object) => ((Reflect.getMetadata(metadataKey, target) as unknown[] | undefined)?.length ?? 0) > 0;
    return source.getGlobalMetadata().length > 0 || declared(instance.constructor) || declared(method);
  }
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}
