import {
  TransportClosedError,
  type EventTransport,
  type LocalEnvelope,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import type { TransportFactory } from '../transport-context.js';
import { defaultMemoryBroker, type MemoryBroker } from './memory-broker.js';
import { resolveMemoryOptions, type MemoryOptions } from './memory-options.js';

/** The default transport: instances in one process share a MemoryBroker; nothing leaves the process. */
export class MemoryTransport implements EventTransport {
  readonly redelivers = false;
  private readonly unsubscribers = new Set<() => void>();
  private closed = false;
  private since = new Date().toISOString();

  constructor(
    private readonly broker: MemoryBroker,
    /** Whether events travel encoded, through the wire codec, as on a real broker. */
    readonly encodes: boolean,
  ) {}

  async connect(): Promise<void> {}

  publish(subject: string, payload: Uint8Array | LocalEnvelope): void {
    if (this.closed) throw new TransportClosedError('the memory transport is closed');
    this.broker.publish(subject, payload, this);
  }

  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler): TransportSubscription {
    if (this.closed) throw new TransportClosedError('the memory transport is closed');
    const unsubscribe = this.broker.subscribe(subject, queue, this, handler);
    this.unsubscribers.add(unsubscribe);
    return {
      unsubscribe: () => {
        if (this.unsubscribers.delete(unsubscribe)) unsubscribe();
      },
    };
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.since = new Date().toISOString();
    await this.broker.idle();
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    this.unsubscribers.clear();
  }

  status(): TransportStatus {
    return { transport: 'memory', connected: !this.closed, disconnects: 0, reconnects: 0, since: this.since };
  }
}

export const memoryTransport: TransportFactory = (context) => {
  const options = resolveMemoryOptions(context.section<MemoryOptions>('memory'), context.env);
  return new MemoryTransport(options.broker ?? defaultMemoryBroker, options.codec);
};
