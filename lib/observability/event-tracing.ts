import type { Attributes, Context, Span, SpanContext, Tracer } from '@opentelemetry/api';
import type { EventContext } from '../event-context.js';
import { INSTRUMENTATION_SCOPE, type OpenTelemetryApi } from './opentelemetry.js';

/** What a send span needs to know about the event it publishes. */
export interface OutgoingEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly subject: string;
}

/** A delivery's span and the OpenTelemetry context its handlers run in. */
export interface ProcessSpan {
  readonly span: Span;
  readonly context: Context;
}

const TRACEPARENT_PARTS = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Spans per the OpenTelemetry messaging semantic conventions: `send <destination>` (PRODUCER) per
 * publish, `process <destination>` (CONSUMER) per delivery on each instance that receives it, and
 * `handle <Class.method>` (INTERNAL) per handler run. The destination in names is the subject
 * without its routing key, so that names stay few. The producer's context travels in the event
 * (`traceparent`, `tracestate`), so that it crosses every transport and survives dead letters.
 */
export class EventTracing {
  private readonly tracer: Tracer;

  private constructor(
    private readonly api: OpenTelemetryApi,
    private readonly system: string,
  ) {
    this.tracer = api.trace.getTracer(INSTRUMENTATION_SCOPE);
  }

  /** Tracing when a tracer provider is registered (an SDK started before the application); else undefined. */
  static create(api: OpenTelemetryApi, system: string): EventTracing | undefined {
    const provider = api.trace.getTracerProvider() as Partial<InstanceType<OpenTelemetryApi['ProxyTracerProvider']>>;
    const unregistered = new api.ProxyTracerProvider().getDelegate();
    if (typeof provider.getDelegate === 'function' && provider.getDelegate() === unregistered) return undefined;
    return new EventTracing(api, system);
  }

  /** The send span of one publish: a child of the caller's span (an HTTP request, a handler), if any. The body size is set once encoded. */
  startSend(event: OutgoingEvent, destination: string): Span {
    const attributes: Attributes = {
      'messaging.system': this.system,
      'messaging.destination.name': event.subject,
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.message.id': event.id,
      'cloudevents.event_id': event.id,
      'cloudevents.event_type': event.type,
      'cloudevents.event_source': event.source,
    };
    return this.tracer.startSpan(`send ${destination}`, { kind: this.api.SpanKind.PRODUCER, attributes }, this.api.context.active());
  }

  /** The W3C `traceparent` of a span, for the event's extension attribute; undefined for a span that is not valid. */
  traceparent(span: Span): string | undefined {
    const { traceId, spanId, traceFlags } = span.spanContext();
    if (!this.api.isValidTraceId(traceId) || !this.api.isValidSpanId(spanId)) return undefined;
    return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  }

  tracestate(span: Span): string | undefined {
    return span.spanContext().traceState?.serialize() || undefined;
  }

  /** The process span of one delivery: a child of the producer's span when the event carries its context. */
  startProcess(context: EventContext, destination: string, group: string | undefined, bodySize: number | undefined): ProcessSpan {
    const parent = this.producerContext(context);
    const attributes: Attributes = {
      'messaging.system': this.system,
      'messaging.destination.name': context.subject,
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': context.id,
      'cloudevents.event_id': context.id,
      'cloudevents.event_type': context.type,
      'cloudevents.event_source': context.source,
    };
    if (group !== undefined) attributes['messaging.consumer.group.name'] = group;
    if (bodySize !== undefined) attributes['messaging.message.body.size'] = bodySize;
    if (context.attempt > 1) attributes['domain_events.delivery.attempt'] = context.attempt;
    const span = this.tracer.startSpan(`process ${destination}`, { kind: this.api.SpanKind.CONSUMER, attributes }, parent);
    return { span, context: this.api.trace.setSpan(parent, span) };
  }

  /** The span of one handler run, in which the handler runs (so that what it publishes continues the trace). */
  startHandle(parent: ProcessSpan, handler: string, destination: string): ProcessSpan {
    const span = this.tracer.startSpan(
      `handle ${handler}`,
      {
        kind: this.api.SpanKind.INTERNAL,
        attributes: { 'messaging.system': this.system, 'messaging.destination.name': destination, 'code.function.name': handler },
      },
      parent.context,
    );
    return { span, context: this.api.trace.setSpan(parent.context, span) };
  }

  /** Runs `fn(...args)` with the span's context active. */
  within<A extends unknown[], R>(span: ProcessSpan, fn: (...args: A) => R, ...args: A): R {
    return this.api.context.with(span.context, fn, undefined, ...args);
  }

  /** Ends a span, with the error recorded and the status set when there was one. */
  end(span: Span, error?: unknown): void {
    if (error !== undefined) {
      const err = error instanceof Error ? error : new Error(String(error));
      span.recordException(err);
      span.setAttribute('error.type', err.name);
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: err.message });
    }
    span.end();
  }

  /** The producer's span as the parent, from the event's `traceparent`; the active context for an untraced producer. */
  private producerContext(context: EventContext): Context {
    const active = this.api.context.active();
    const parts = context.traceparent && TRACEPARENT_PARTS.exec(context.traceparent);
    if (!parts) return active;
    const spanContext: SpanContext = {
      traceId: parts[2],
      spanId: parts[3],
      traceFlags: parseInt(parts[4], 16) & 1,
      isRemote: true,
      traceState: context.tracestate ? this.api.createTraceState(context.tracestate) : undefined,
    };
    return this.api.isSpanContextValid(spanContext) ? this.api.trace.setSpanContext(active, spanContext) : active;
  }
}
