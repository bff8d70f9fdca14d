import type { Env } from './config/settings.js';
import { RetryPolicy } from './delivery/retry-policy.js';
import type { EventBusModuleOptions } from './event-bus-options.js';
import type { ResolvedEventBusOptions } from './resolve-options.js';
import type { EventTransport } from './transport/event-transport.js';
import type { TransportContext } from './transport/transport-context.js';
import { transportFactory } from './transport/transport-registry.js';

/** The configured transport: one given in code, or the registered one of that name, created from its own options section. */
export function createTransport(resolved: ResolvedEventBusOptions, options: EventBusModuleOptions, env: Env = process.env): EventTransport {
  const choice = resolved.transport;
  if (typeof choice === 'object') return choice;
  const context: TransportContext = {
    subjectPrefix: resolved.subjectPrefix,
    instanceId: resolved.instanceId,
    retry: new RetryPolicy(resolved.retry),
    shutdownTimeoutMs: resolved.shutdownTimeoutMs,
    env,
    section: <T extends object>(name: string) => (options as Record<string, unknown>)[name] as T | undefined,
  };
  const factory = typeof choice === 'function' ? choice : transportFactory(choice);
  if (!factory) throw new Error(`no transport is registered as "${choice}"`);
  return factory(context);
}
