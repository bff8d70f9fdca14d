import { Logger } from '@nestjs/common';
import { connect, type ConnectionOptions, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import {
  TransportClosedError,
  type EventTransport,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import type { TransportFactory } from '../transport-context.js';
import { natsConnectionOptions, resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from './nats-options.js';

const ignore = () => undefined;

export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
}

/**
 * Core NATS: at-most-once broadcast and queue groups. Publishes go straight to the client's
 * buffer with no headers (the origin tag is inside the body); while reconnecting, the client
 * buffers them and sends them once the connection is back.
 */
export class NatsTransport implements EventTransport {
  readonly encodes = true;
  readonly redelivers: boolean = false;
  protected readonly name: string = 'nats';
  protected readonly logger = new Logger('EventBus:NATS');
  protected connection?: NatsConnection;
  private connected = false;
  private disconnects = 0;
  private reconnects = 0;
  private lastError?: string;
  /** When `connected` last changed. */
  private since?: string;

  constructor(
    private readonly options: ResolvedNatsOptions,
    private readonly extraConnectionOptions: Partial<ConnectionOptions> = {},
  ) {}

  async connect(): Promise<void> {
    const servers = this.options.servers.join(',');
    try {
      this.connection = await connect({ ...natsConnectionOptions(this.options), ...this.extraConnectionOptions });
    } catch (error) {
      throw new NatsConnectError(`cannot connect to NATS at ${servers}: ${(error as Error).message}`, { cause: error });
    }
    this.changed(true);
    this.logger.log(`connected to ${this.connection.getServer()}`);
    void this.watch(this.connection);
  }

  publish(subject: string, payload: Uint8Array, _id?: string): Promise<unknown> | void {
    this.openConnection(`publish to ${subject}`).publish(subject, payload);
  }

  /** The connection, or a TransportClosedError saying what could not be done. */
  protected openConnection(what: string): NatsConnection {
    const connection = this.connection;
    if (!connection || connection.isClosed() || connection.isDraining()) {
      throw new TransportClosedError(`cannot ${what}: the NATS connection is ${connection ? 'closed' : 'not open'}`);
    }
    return connection;
  }

  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, _delivery?: DeliveryOptions): TransportSubscription {
    const subscription: Subscription = this.openConnection(`subscribe to ${subject}`).subscribe(subject, {
      queue,
      callback: (error, message) => {
        if (error) {
          this.lastError = error.message;
          this.logger.error(`subscription ${subject}: ${error.message}`, error.stack);
          return;
        }
        // Handlers log and count their own failures; core NATS has no redelivery to ask for.
        handler(message.subject, message.data, 1)?.catch(ignore);
      },
    });
    return { unsubscribe: () => subscription.unsubscribe() };
  }

  async flush(): Promise<void> {
    await this.connection?.flush();
  }

  /** Stops new deliveries, lets the ones received run, flushes what was published, and closes. */
  async close(): Promise<void> {
    const connection = this.connection;
    if (!connection || connection.isClosed()) return;
    try {
      if (!connection.isDraining()) await connection.drain();
    } catch (error) {
      this.logger.warn(`drain failed (${(error as Error).message}); closing`);
      await connection.close();
    }
    this.changed(false);
  }

  status(): TransportStatus {
    return {
      transport: this.name,
      connected: this.connected && !!this.connection && !this.connection.isClosed(),
      server: this.connection?.getServer(),
      disconnects: this.disconnects,
      reconnects: this.reconnects,
      lastError: this.lastError,
      since: this.since,
    };
  }

  private changed(connected: boolean): void {
    if (this.connected === connected && this.since) return;
    this.connected = connected;
    this.since = new Date().toISOString();
  }

  private async watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      switch (status.type) {
        case 'disconnect':
          this.changed(false);
          this.lastError = `disconnected from ${status.server}`;
          this.disconnects++;
          this.logger.warn(`disconnected from ${status.server}; reconnecting (publishes are buffered meanwhile)`);
          break;
        case 'reconnect':
          this.changed(true);
          this.reconnects++;
          this.logger.log(`reconnected to ${status.server}`);
          break;
        case 'error':
          this.lastError = status.error.message;
          this.logger.error(`server error: ${status.error.message}`, status.error.stack);
          break;
        case 'slowConsumer':
          this.lastError = `slow consumer on ${status.sub.getSubject()}`;
          this.logger.error(`slow consumer on ${status.sub.getSubject()}: messages are being dropped`);
          break;
        case 'staleConnection':
          this.logger.warn('stale connection: the server stopped answering pings');
          break;
      }
    }
    this.changed(false);
    const closedWith = await connection.closed();
    if (closedWith instanceof Error) {
      this.lastError = closedWith.message;
      this.logger.error(`connection closed: ${closedWith.message}`, closedWith.stack);
    }
  }
}

export const natsTransport: TransportFactory = (context) =>
  new NatsTransport(resolveNatsOptions(context.section<NatsOptions>('nats'), context.env, context.instanceId));
