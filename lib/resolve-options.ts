import { randomBytes } from 'node:crypto';
import { sourceProblem } from './codec/cloudevents-attributes.js';
import { resolveCodecOptions, type ResolvedCodecOptions } from './codec/codec-options.js';
import { asBoolean, asString, integerSetting, oneOf, pick, type Env } from './config/settings.js';
import { resolveRetryOptions, type ResolvedRetryOptions } from './delivery/retry-policy.js';
import type { EventBusModuleOptions } from './event-bus-options.js';
import { subjectProblem } from './routing/subject-pattern.js';
import { MAX_NAME_LENGTH, nameProblem } from './routing/subject-token.js';
import type { EventTransport } from './transport/event-transport.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS } from './transport/in-flight-work.js';
import type { TransportFactory } from './transport/transport-context.js';
import { transportNames } from './transport/transport-registry.js';

export interface ResolvedEventBusOptions {
  /** A registered transport's name, or the factory or transport given in code. */
  transport: string | TransportFactory | EventTransport;
  subjectPrefix: string;
  instanceId: string;
  source: string;
  /** How events are encoded: the CloudEvents mode and the largest message. */
  codec: ResolvedCodecOptions;
  retry: ResolvedRetryOptions;
  /** How long a stop waits for running handlers and unacknowledged publishes. */
  shutdownTimeoutMs: number;
  /** Whether handlers run in an async context that makes what they publish caused by their event. */
  causation: boolean;
}

/** The longest subject prefix: a subject is `<prefix>.<type>[.<key>]`, and keys need the rest of its length. */
const MAX_PREFIX_LENGTH = 2 * MAX_NAME_LENGTH;

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
  if (subjectPrefix.length > MAX_PREFIX_LENGTH) prefix.fail(`must be at most ${MAX_PREFIX_LENGTH} characters, got ${subjectPrefix.length}`);

  const id = pick(options.instanceId, 'instanceId', env, 'EVENT_BUS_INSTANCE_ID', asString);
  const instanceId = id.value ?? `i${randomBytes(9).toString('base64url')}`;
  const idProblem = nameProblem(instanceId);
  if (idProblem) id.fail(idProblem);

  const source = pick(options.source, 'source', env, 'EVENT_BUS_SOURCE', asString);
  const sourceIssue = source.value === undefined ? undefined : sourceProblem(source.value);
  if (sourceIssue) source.fail(`${sourceIssue}; got ${JSON.stringify(source.value)}`);

  return {
    transport,
    subjectPrefix,
    instanceId,
    source: source.value ?? '/nestjs-domain-events',
    codec: resolveCodecOptions(options.cloudEvents, options.maxMessageBytes, env),
    retry: resolveRetryOptions(options.retry, env),
    shutdownTimeoutMs: integerSetting(env, options.shutdownTimeoutMs, 'shutdownTimeoutMs', 'EVENT_BUS_SHUTDOWN_TIMEOUT_MS', 0, DEFAULT_SHUTDOWN_TIMEOUT_MS),
    causation: pick(options.causation, 'causation', env, 'EVENT_BUS_CAUSATION', asBoolean).value ?? true,
  };
}
