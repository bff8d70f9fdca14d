import type { Env } from '../config/settings.js';
import type { RetryPolicy } from '../delivery/retry-policy.js';
import type { EventTransport } from './event-transport.js';

/** What a transport is created from: the module's settings, and the sections of the options it owns. */
export interface TransportContext {
  readonly subjectPrefix: string;
  readonly instanceId: string;
  readonly retry: RetryPolicy;
  /** How long close() waits for running handlers and unacknowledged publishes. */
  readonly shutdownTimeoutMs: number;
  /** The environment, for a transport's settings that code leaves out. */
  readonly env: Env;
  /** A section of the module options as given in code (`forRoot({ nats: { … } })`): each transport reads its own. */
  section<T extends object>(name: string): T | undefined;
}

/** Creates a transport; its settings are validated here, so that a bad one fails at startup naming the option or variable. */
export type TransportFactory = (context: TransportContext) => EventTransport;
