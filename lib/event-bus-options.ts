import type { FactoryProvider, ModuleMetadata, Type } from '@nestjs/common';
import type { MemoryBroker } from './transport/memory-broker.js';

export type TransportName = 'memory' | 'nats';

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

export interface EventBusModuleOptions {
  /** `memory` (default: one process) or `nats`. */
  transport?: TransportName;
  /** First tokens of every subject; events go to `<prefix>.<type>[.<key>]`. */
  subjectPrefix?: string;
  /** This instance's id, carried as the `origin` of what it publishes. Unique per process. */
  instanceId?: string;
  /** CloudEvents `source` of the events this instance publishes. */
  source?: string;
  memory?: MemoryOptions;
  nats?: NatsOptions;
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
