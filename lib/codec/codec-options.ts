import { asInteger, asString, integerAtLeast, oneOf, pick, type Env } from '../config/settings.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './wire-limits.js';

/** CloudEvents content mode of published events: the envelope in the body, or attributes in `ce-` headers. */
export type CloudEventsMode = 'structured' | 'binary';

export interface CloudEventsOptions {
  /** How events are published (both are always read): `structured` (default) or `binary`. */
  mode?: CloudEventsMode;
}

export interface ResolvedCodecOptions {
  readonly mode: CloudEventsMode;
  readonly maxMessageBytes: number;
}

/** The smallest maxMessageBytes that still holds an envelope and some data. */
const MIN_MESSAGE_BYTES = 1024;

export function resolveCodecOptions(cloudEvents: CloudEventsOptions = {}, maxMessageBytes: number | undefined, env: Env): ResolvedCodecOptions {
  const mode = pick(cloudEvents.mode, 'cloudEvents.mode', env, 'EVENT_BUS_CLOUDEVENTS_MODE', asString as (raw: string) => CloudEventsMode);
  const max = pick(maxMessageBytes, 'maxMessageBytes', env, 'EVENT_BUS_MAX_MESSAGE_BYTES', asInteger);
  return {
    mode: oneOf(mode, ['structured', 'binary'], 'structured'),
    maxMessageBytes: integerAtLeast(max, MIN_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES),
  };
}
