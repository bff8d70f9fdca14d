import { Logger } from '@nestjs/common';
import { connect, type ConnectionOptions, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { settlesWithin } from '../../deferred.js';
import type { DeliveryOptions } from '../../delivery/delivery-options.js';
import { hasWildcard } from '../../routing/subject-pattern.js';
import {
  TransportClosedError,
  type EventTransport,
  type MessageHeaders,
  type TransportMessageHandler,
  type TransportStatus,
  type TransportSubscription,
} from '../event-transport.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, InFlightWork } from '../in-flight-work.js';
import { ConnectionHealth } from '../connection-health.js';
import type { TransportFactory } from '../transport-context.js';
import { natsConnectionOptions, resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from './nats-options.js';
import { PublishBuffer } from './publish-buffer.js';
import { ReceiveBuffer, type BufferedSubscriber } from './receive-buffer.js';

const ignore = () => undefined;

export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
}

/**
 * Core NATS: broadcast and queue groups; structured CloudEvents travel without headers (the origin
 * tag is inside the body). Publishes go through a bounded buffer that batches socket writes and keeps
 * what the server has not confirmed across reconnects (publish-buffer.ts); received messages reach
 * handlers through a bounded queue that keeps the socket read when handlers fall behind (receive-buffer.ts).
 */
export class NatsTransport implements EventTransport {
  readonly encodes = true;
  readonly redelivers: boolean = false;
  readonly carriesHeaders = true;
  protected readonly name: string = 'nats';
  protected readonly logger = new Logger('EventBus:NATS');
  /** @internal */
  protected connection?: NatsConnection;
  /** Handlers of received messages still running: close() waits for them, so that what they publish goes out. */
  protected readonly handling = new InFlightWork();
  private readonly subscriptions = new Set<Subscription>();
  private publishes?: PublishBuffer;
  private readonly received: ReceiveBuffer;
  /** Set by close(): publishes are refused from then on. */
  private stopping = false;
  private readonly health = new ConnectionHealth();
  /** Slow consumers the client or the server reported (those the receive buffer saw are counted there). */
  private reportedSlowConsumers = 0;

  constructor(options: ResolvedNatsOptions, shutdownTimeoutMs?: number);
  /** @internal */
  constructor(options: ResolvedNatsOptions, shutdownTimeoutMs: number, extraConnectionOptions: Partial<ConnectionOptions>);
  constructor(
    private readonly options: ResolvedNatsOptions,
    protected readonly shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
    private readonly extraConnectionOptions: Partial<ConnectionOptions> = {},
  ) {
    this.received = new ReceiveBuffer(options.receiveBuffer, this.logger);
  }

  async connect(): Promise<void> {
    const servers = this.options.servers.join(',');
    let connection: NatsConnection;
    try {
      connection = await connect({ ...natsConnectionOptions(this.options), ...this.extraConnectionOptions });
    } catch (error) {
      throw new NatsConnectError(`cannot connect to NATS at ${servers}: ${(error as Error).message}`, { cause: error });
    }
    this.connection = connection;
    this.publishes = new PublishBuffer(connection, this.options.publishBuffer, this.options.publishConfirm, this.logger);
    this.health.opened();
    this.logger.log(`connected to ${connection.getServer()}`);
    void this.watch(connection);
  }

  /**
   * Buffers the message (see PublishBuffer.accept); throws when the transport is closed, the buffer
   * is full, or the server would refuse the message.
   */
  publish(subject: string, payload: Uint8Array, _id?: string, headers?: MessageHeaders): Promise<unknown> | void {
    if (!this.isOpen()) throw this.closedError(`publish to ${subject}`);
    return this.publishes!.accept(subject, payload, headers);
  }

  /** @internal The connection, or a TransportClosedError saying what could not be done. */
  protected openConnection(what: string): NatsConnection {
    if (!this.isOpen()) throw this.closedError(what);
    return this.connection!;
  }

  private isOpen(): boolean {
    const connection = this.connection;
    return !this.stopping && !!connection && !connection.isClosed() && !connection.isDraining();
  }

  private closedError(what: string): TransportClosedError {
    const state = !this.connection ? 'not open' : this.stopping && !this.connection.isClosed() ? 'closing' : 'closed';
    return new TransportClosedError(`cannot ${what}: the NATS connection is ${state}`);
  }

  subscribe(subject: string, queue: string | undefined, handler: TransportMessageHandler, _delivery?: DeliveryOptions): TransportSubscription {
    const tracked: TransportMessageHandler = (s, payload, attempt, headers) => {
      const work = handler(s, payload, attempt, headers);
      if (work) this.handling.track(work);
      return work;
    };
    const subscriber: BufferedSubscriber = { handler: tracked, active: true };
    const received = this.received;
    // Without a wildcard a message's subject is the subscription's: not decoded from its bytes again for each message.
    const exact = hasWildcard(subject) ? undefined : subject;
    const subscription: Subscription = this.openConnection(`subscribe to ${subject}`).subscribe(subject, {
      queue,
      callback: (error, message) => {
        if (error) {
          this.health.failed(`subscription ${subject}: ${error.message}`);
          this.logger.error(`subscription ${subject}: ${error.message}`, error.stack);
          return;
        }
        received.deliver(subscriber, exact ?? message.subject, message.data, message.headers);
      },
    });
    this.subscriptions.add(subscription);
    return {
      unsubscribe: () => {
        subscriber.active = false;
        this.subscriptions.delete(subscription);
        subscription.unsubscribe();
      },
    };
  }

  /** Resolves once the server has processed every subscription and publish made so far (through reconnects, for publishes). */
  async flush(): Promise<void> {
    const connection = this.connection;
    if (!connection) return;
    const published = this.publishes?.confirmed();
    await connection.flush();
    await published;
  }

  /** Drains every subscription: the server stops sending, and what it sent before is still handled. */
  async stopReceiving(): Promise<void> {
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all(subscriptions.map((subscription) => subscription.drain().catch(ignore)));
  }

  /**
   * Stops receiving; lets the received messages be handled and running handlers finish (what they
   * publish goes out); refuses new publishes and waits for the server to confirm the buffered ones
   * (through a reconnect); then closes. Each wait is bounded by the shutdown timeout; what could not
   * be confirmed or handled is counted and logged.
   */
  async close(): Promise<void> {
    const connection = this.connection;
    if (!connection || connection.isClosed()) return;
    await this.stopReceiving();
    await this.finishWork();
    this.stopping = true;
    const published = this.publishes?.confirmed()?.catch(ignore); // a rejection was counted and logged by the buffer
    if (published && !(await settlesWithin(published, this.shutdownTimeoutMs))) {
      this.publishes!.fail(new Error(`the server did not confirm them within ${this.shutdownTimeoutMs} ms of close() (shutdownTimeoutMs)`));
    }
    try {
      if (this.health.connected && !connection.isDraining()) await connection.drain();
      else await connection.close();
    } catch (error) {
      this.logger.warn(`drain failed (${(error as Error).message}); closing`);
      await connection.close();
    }
    this.health.ended();
  }

  /** Waits, up to the shutdown timeout, for what must be done before publishing stops: received messages handled. */
  protected async finishWork(): Promise<void> {
    const deadline = Date.now() + this.shutdownTimeoutMs;
    if (!(await settlesWithin(this.received.drained(), this.shutdownTimeoutMs))) {
      this.received.discard(`close() waited ${this.shutdownTimeoutMs} ms for handlers to catch up (shutdownTimeoutMs)`);
    }
    if (!(await this.handling.settled(Math.max(0, deadline - Date.now())))) {
      this.logger.warn(`after ${this.shutdownTimeoutMs} ms, ${this.handling.size} handlers still run; closing (what they publish from now on fails)`);
    }
  }

  status(): TransportStatus {
    const publishes = this.publishes;
    const received = this.received;
    return {
      transport: this.name,
      ...this.health.report(),
      connected: this.health.connected && !!this.connection && !this.connection.isClosed(),
      server: this.connection?.getServer(),
      bufferedPublishes: publishes?.bufferedMessages ?? 0,
      bufferedPublishBytes: publishes?.bufferedBytes ?? 0,
      publishBufferRejections: publishes?.rejected ?? 0,
      resentPublishes: publishes?.resent ?? 0,
      lostPublishes: publishes?.lost ?? 0,
      receiveBuffered: received.queued,
      droppedMessages: received.dropped,
      slowConsumers: received.slowConsumers + this.reportedSlowConsumers,
    };
  }

  private async watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      switch (status.type) {
        case 'disconnect':
          this.health.lost();
          this.publishes?.disconnected();
          this.health.failed(`disconnected from ${status.server}`);
          this.logger.warn(
            `disconnected from ${status.server}; reconnecting. Meanwhile subscriptions miss what is published, ` +
              `and publishes wait in the publish buffer (${this.publishes?.bufferedMessages ?? 0} now, at most ${this.options.publishBuffer.messages})`,
          );
          break;
        case 'reconnect': {
          const downMs = Date.now() - (this.health.changedAt ?? Date.now());
          this.health.opened();
          this.logger.log(`reconnected to ${status.server} after ${downMs} ms`);
          this.publishes?.reconnected();
          break;
        }
        case 'error':
          if (/slow consumer/i.test(status.error.message)) this.reportedSlowConsumers++;
          this.health.failed(`server error: ${status.error.message}`);
          this.logger.error(`server error: ${status.error.message}`, status.error.stack);
          break;
        case 'slowConsumer':
          this.reportedSlowConsumers++;
          this.health.failed(`slow consumer on ${status.sub.getSubject()}`);
          this.logger.warn(`slow consumer on ${status.sub.getSubject()}: ${status.pending} messages pending in the client`);
          break;
        case 'staleConnection':
          this.health.failed('stale connection: the server stopped answering pings');
          this.logger.warn('stale connection: the server stopped answering pings; reconnecting');
          break;
        case 'ldm':
          this.logger.warn(`${status.server} is entering lame duck mode: the client will move to another server`);
          break;
      }
    }
    this.health.ended();
    const closedWith = await connection.closed();
    if (closedWith instanceof Error) {
      this.health.failed(`connection closed: ${closedWith.message}`);
      this.logger.error(`connection closed: ${closedWith.message}`, closedWith.stack);
    }
    this.publishes?.fail(new Error(`the NATS connection closed${closedWith instanceof Error ? ` (${closedWith.message})` : ''}`));
  }
}

export const natsTransport: TransportFactory = (context) =>
  new NatsTransport(resolveNatsOptions(context.section<NatsOptions>('nats'), context.env, context.instanceId), context.shutdownTimeoutMs);
