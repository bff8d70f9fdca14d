import {
  TransportClosedError,
  type EventTransport,
  type LocalEnvelope,
  type MessageHeaders,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, InFlightWork } from '../in-flight-work.js';
import type { TransportFactory } from '../transport-context.js';
import { defaultMemoryBroker, type MemoryBroker } from './memory-broker.js';
import { resolveMemoryOptions, type MemoryOptions } from './memory-options.js';

/** The default transport: instances in one process share a MemoryBroker; nothing leaves the process. */
export class MemoryTransport implements EventTransport {
  readonly redelivers = false;
  readonly carriesHeaders: boolean = true;
  private readonly unsubscribers = new Set<() => void>();
  private readonly handling = new InFlightWork();
  private closed = false;
  private since = new Date().toISOString();

  constructor(
    private readonly broker: MemoryBroker,
    /** Whether events travel encoded, through the wire codec, as on a real broker. */
    readonly encodes: boolean,
    private readonly shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
  ) {}

  async connect(): Promise<void> {}

  publish(subject: string, payload: Uint8Array | LocalEnvelope, _id?: string, headers?: MessageHeaders): void {
    if (this.closed) throw new TransportClosedError('the memory transport is closed');
    this.broker.publish(subject, payload, headers, this);
  }

  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler): TransportSubscription {
    if (this.closed) throw new TransportClosedError('the memory transport is closed');
    const tracked: TransportMessageHandler = (s, payload, attempt, headers) => {
      const work = handler(s, payload, attempt, headers);
      if (work) this.handling.track(work);
      return work;
    };
    const unsubscribe = this.broker.subscribe(subject, queue, this, tracked);
    this.unsubscribers.add(unsubscribe);
    return {
      unsubscribe: () => {
        if (this.unsubscribers.delete(unsubscribe)) unsubscribe();
      },
    };
  }

  async flush(): Promise<void> {}

  async stopReceiving(): Promise<void> {
    this.unsubscribers.clear();
    await this.broker.detach(this);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.stopReceiving();
    await this.handling.settled(this.shutdownTimeoutMs);
    this.closed = true;
    this.since = new Date().toISOString();
  }

  status(): TransportStatus {
    return { transport: 'memory', connected: !this.closed, disconnects: 0, reconnects: 0, since: this.since };
  }
}

export const memoryTransport: TransportFactory = (context) => {
  const options = resolveMemoryOptions(context.section<MemoryOptions>('memory'), context.env);
  return new MemoryTransport(options.broker ?? defaultMemoryBroker, options.codec, context.shutdownTimeoutMs);
};
