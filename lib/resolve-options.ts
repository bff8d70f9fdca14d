import { randomBytes } from 'node:crypto';
import { asBoolean, asString, oneOf, pick, type Env } from './config/settings.js';
import { resolveRetryOptions, type ResolvedRetryOptions } from './delivery/retry-policy.js';
import type { EventBusModuleOptions } from './event-bus-options.js';
import { subjectProblem } from './routing/subject-pattern.js';
import { tokenProblem } from './routing/subject-token.js';
import type { EventTransport } from './transport/event-transport.js';
import type { TransportFactory } from './transport/transport-context.js';
import { transportNames } from './transport/transport-registry.js';

export interface ResolvedEventBusOptions {
  /** A registered transport's name, or the factory or transport given in code. */
  transport: string | TransportFactory | EventTransport;
  subjectPrefix: string;
  instanceId: string;
  source: string;
  retry: ResolvedRetryOptions;
  /** Whether handlers run in an async context that makes what they publish caused by their event. */
  causation: boolean;
}

/**
 * Merges the module's own options given in code (they win) with the environment, then defaults,
 * and validates them; a bad value fails startup with the option or variable named. Each transport
 * resolves its own section (`nats`, `jetstream`, …) when it is created.
 */
export function resolveEventBusOptions(options: EventBusModuleOptions = {}, env: Env = process.env): ResolvedEventBusOptions {
  const given = options.transport;
  const transport =
    typeof given === 'function' || (typeof given === 'object' && given !== null)
      ? given
      : oneOf(pick(given, 'transport', env, 'EVENT_BUS_TRANSPORT', asString), transportNames(), 'memory');

  const prefix = pick(options.subjectPrefix, 'subjectPrefix', env, 'EVENT_BUS_SUBJECT_PREFIX', asString);
  const subjectPrefix = prefix.value ?? 'events.domain';
  const prefixProblem = subjectProblem(subjectPrefix);
  if (prefixProblem) prefix.fail(prefixProblem);

  const id = pick(options.instanceId, 'instanceId', env, 'EVENT_BUS_INSTANCE_ID', asString);
  const instanceId = id.value ?? `i${randomBytes(9).toString('base64url')}`;
  const idProblem = tokenProblem(instanceId);
  if (idProblem) id.fail(idProblem);

  const source = pick(options.source, 'source', env, 'EVENT_BUS_SOURCE', asString);
  if (source.value === '') source.fail('must not be empty');

  return {
    transport,
    subjectPrefix,
    instanceId,
    source: source.value ?? '/nestjs-domain-events',
    retry: resolveRetryOptions(options.retry, env),
    causation: pick(options.causation, 'causation', env, 'EVENT_BUS_CAUSATION', asBoolean).value ?? true,
  };
}
