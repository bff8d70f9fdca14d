import type { FactoryProvider, ModuleMetadata, Type } from '@nestjs/common';
import type { IdempotencyStore } from './idempotency-store.js';
import type { MemoryBroker } from './transport/memory-broker.js';

export type TransportName = 'memory' | 'nats' | 'jetstream';

export interface NatsTlsOptions {
  /** CA certificate file that signs the server's certificate. */
  caFile?: string;
  /** Client certificate file, for servers that verify clients. */
  certFile?: string;
  /** Client key file, with certFile. */
  keyFile?: string;
}

export interface NatsOptions {
  /** Server URLs (`nats://host:4222`); several for a cluster. */
  servers?: string | string[];
  /** Connection name shown by the server's monitoring (defaults to the instance id). */
  name?: string;
  token?: string;
  user?: string;
  password?: string;
  /** A `.creds` file (JWT and nkey seed), as issued by nsc. */
  credsFile?: string;
  /** An nkey user seed (`SU...`). */
  nkeySeed?: string;
  tls?: NatsTlsOptions;
  /** How long the first connect may take before the application refuses to start. */
  connectTimeoutMs?: number;
  /** Pause between reconnect attempts to one server. */
  reconnectTimeWaitMs?: number;
  /** Reconnect attempts per server before giving up; -1 (the default) never gives up. */
  maxReconnectAttempts?: number;
}

export interface MemoryOptions {
  /**
   * Run every event through the wire codec, as NATS does, so that events that would not
   * survive the wire fail in development too. Off by default for speed.
   */
  codec?: boolean;
  /** The in-process broker instances share; one per process by default. */
  broker?: MemoryBroker;
}

export interface JetStreamOptions {
  /** Stream that stores `<prefix>.>` (created or updated at startup). */
  stream?: string;
  storage?: 'file' | 'memory';
  replicas?: number;
  /** Oldest event kept; 0 keeps events until other limits apply. */
  maxAgeMs?: number;
  maxMessages?: number;
  maxBytes?: number;
  /** Window in which a re-published event id is stored once. */
  duplicateWindowMs?: number;
  /** How long a delivery may stay unacknowledged before it is redelivered (handlers running longer keep it with working()). */
  ackWaitMs?: number;
  /** Unacknowledged deliveries per consumer at once. */
  maxInFlight?: number;
  /** Handled-event record, so that a redelivered event runs at most once per group: in-process, NATS KV (cluster-wide), or off. */
  idempotency?: 'memory' | 'kv' | 'off';
  /** Your own handled-event record (a database table, Redis…); replaces `idempotency`. */
  idempotencyStore?: IdempotencyStore;
  /** How long handled event ids are remembered. */
  idempotencyWindowMs?: number;
  /** How long shutdown waits for running handlers before closing. */
  shutdownTimeoutMs?: number;
  /** How long the consumer of a group-less subscription survives its instance being gone. */
  broadcastInactiveMs?: number;
}

export interface RetryOptions {
  /** Deliveries of a failing event before it goes to the dead letters. */
  attempts?: number;
  /** Delay before the second delivery; doubled for each next one, with jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface EventBusModuleOptions {
  /** `memory` (default: one process), `nats` (core NATS: broadcast, at most once) or `jetstream` (durable, at least once). */
  transport?: TransportName;
  /** First tokens of every subject; events go to `<prefix>.<type>[.<key>]`. */
  subjectPrefix?: string;
  /** This instance's id, carried as the `origin` of what it publishes. Unique per process. */
  instanceId?: string;
  /** CloudEvents `source` of the events this instance publishes. */
  source?: string;
  memory?: MemoryOptions;
  nats?: NatsOptions;
  jetstream?: JetStreamOptions;
  /** JetStream retries of failing handlers. */
  retry?: RetryOptions;
}

export interface EventBusOptionsFactory {
  createEventBusOptions(): EventBusModuleOptions | Promise<EventBusModuleOptions>;
}

export interface EventBusModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => EventBusModuleOptions | Promise<EventBusModuleOptions>;
  inject?: FactoryProvider['inject'];
  useClass?: Type<EventBusOptionsFactory>;
  useExisting?: Type<EventBusOptionsFactory>;
}
