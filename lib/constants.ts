/** DI token of the options given to `EventBusModule.forRoot()` / `forRootAsync()`. */
export const EVENT_BUS_MODULE_OPTIONS = Symbol('EVENT_BUS_MODULE_OPTIONS');
/** DI token of the options after code, environment and defaults were merged and validated. */
export const RESOLVED_EVENT_BUS_OPTIONS = Symbol('RESOLVED_EVENT_BUS_OPTIONS');
/** DI token of the transport (`EventTransport`) the bus publishes and subscribes through. */
export const EVENT_TRANSPORT = Symbol('EVENT_TRANSPORT');

export const ON_DOMAIN_EVENT_METADATA = 'nestjs-domain-events:on-domain-event';

/** Metadata keys written by `@nestjs/cqrs` decorators (stable since cqrs 8, not exported by its barrel). */
export const CQRS_EVENTS_HANDLER_METADATA = '__eventsHandler__';
export const CQRS_SAGA_METADATA = '__saga__';
