import type { Logger } from '@nestjs/common';
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { ConfirmedAcks } from './jetstream-acks.js';
import { retryTransient } from './jetstream-errors.js';
import type { ConsumerRecovery } from './jetstream-status.js';

/**
 * Pulls expire after 5 s and the server sends a heartbeat every second while it has nothing: a lost
 * consumer leader shows as missed heartbeats within about 2 s (the client's defaults: 30 s and 15 s).
 */
const PULL_EXPIRES_MS = 5_000;
const IDLE_HEARTBEAT_MS = 1_000;
/** How often a recovering consumer asks for its leader. */
const RECOVERY_POLL_MS = 250;
/** A recovery this quick is routine (a busy moment, a reconnect): logged at debug level only. */
const ROUTINE_RECOVERY_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** The subject a message's acks go to: its implementation has it, the JsMsg type does not say so. */
const replyOf = (m: JsMsg): string => (m as JsMsg & { readonly reply: string }).reply;

const isNotFound = (error: unknown) => error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound;

/** What a consumer works with. */
export interface ConsumerContext {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** A manager with short request timeouts, for recovery: an info that hangs on a dead leader must not delay the next ask. */
  readonly probe: JetStreamManager;
  readonly logger: Logger;
  /** Told when a consumer loses contact: the stream itself may have lost its leader. */
  readonly suspectStream: () => void;
  /** How long creating a consumer is retried through an election (the publish timeout). */
  readonly setupTimeoutMs: number;
  readonly acks: ConfirmedAcks;
}

export type DurableConsumerConfig = Partial<ConsumerConfig> & { durable_name: string };

/**
 * A durable pull consumer that keeps delivering through elections, reconnects and its own loss. The
 * client's consume() never gives up but recovers slowly (its checks time out during an election, then
 * back off for 15-45 s); here, missed heartbeats, a reconnect or a deleted consumer start a recovery:
 * ask for the consumer until it has a leader (recreating it when it is gone), then pull afresh.
 */
export class DurableConsumer {
  private messages?: ConsumerMessages;
  private recovering?: { since: number; reason: string };
  private stopped = false;
  /**
   * A stream sequence the group is known to have passed (the last message received, else where the
   * consumer stood when this member joined): a recreated consumer starts after it, so that nothing
   * published while it was gone is skipped.
   */
  private passed = 0;
  /** The reply subjects of the last plain acks, oldest overwritten first: those a dead leader may have lost. */
  private readonly recentAcks: (string | undefined)[];
  private nextAck = 0;

  constructor(
    private readonly context: ConsumerContext,
    readonly stream: string,
    private readonly config: DurableConsumerConfig,
    /** Messages pulled at once. */
    private readonly batch: number,
    private readonly onMessage: (m: JsMsg, from: DurableConsumer) => void,
  ) {
    // After a leader dies no new message arrives: the acks it may have lost are among the last 2 batches.
    this.recentAcks = new Array<string | undefined>(Math.max(16, 2 * batch));
  }

  get name(): string {
    return this.config.durable_name;
  }

  /**
   * Creates the consumer, or updates how an existing one delivers (where it stands is kept), then pulls;
   * retried while the cluster cannot answer (an election, or many consumers created at once).
   */
  start(): Promise<void> {
    const { jsm, setupTimeoutMs } = this.context;
    return retryTransient(setupTimeoutMs, async () => {
      let info: ConsumerInfo;
      try {
        info = await jsm.consumers.info(this.stream, this.name);
        const { ack_wait, max_ack_pending, max_deliver } = this.config;
        await jsm.consumers.update(this.stream, this.name, { ack_wait, max_ack_pending, max_deliver });
      } catch (error) {
        if (!isNotFound(error)) throw error;
        info = await jsm.consumers.add(this.stream, this.config);
      }
      // Nothing delivered yet: it stands where it starts (a new consumer, after the stream's last message).
      this.passed = Math.max(this.passed, info.delivered.consumer_seq === 0 ? info.delivered.stream_seq : info.ack_floor.stream_seq);
      await this.pull();
    });
  }

  /**
   * Acks a message it delivered. A plain ack while all is well (it costs nothing more); while
   * recovering, a confirmed one. Once recovered, the last plain acks are sent again and confirmed: those
   * a leader that died may have lost, so that they are not redelivered after the ack wait.
   */
  ack(m: JsMsg): void {
    if (this.recovering) {
      this.context.acks.confirm(replyOf(m));
      return;
    }
    m.ack();
    this.recentAcks[this.nextAck] = replyOf(m);
    this.nextAck = (this.nextAck + 1) % this.recentAcks.length;
  }

  /** Recovers (once at a time) after a sign that the consumer may have lost contact. */
  recover(reason: string): void {
    if (this.stopped || this.recovering) return;
    this.recovering = { since: Date.now(), reason };
    this.context.logger.debug(`consumer ${this.name}: ${reason}; recovering`);
    this.context.suspectStream();
    void this.recoverNow().finally(() => (this.recovering = undefined));
  }

  status(): ConsumerRecovery {
    const { recovering } = this;
    return {
      name: this.name,
      stream: this.stream,
      ...(recovering ? { recovering: { since: new Date(recovering.since).toISOString(), reason: recovering.reason } } : {}),
    };
  }

  /** Stops pulling; messages already received still run and are acked. */
  stop(): void {
    this.stopped = true;
    this.messages?.stop();
  }

  /** Deletes the consumer on the server (an instance's own one, when its subscription goes). */
  async delete(): Promise<void> {
    this.stop();
    await this.context.jsm.consumers.delete(this.stream, this.name).catch(() => undefined);
  }

  private async pull(): Promise<void> {
    const consumer = await this.context.js.consumers.get(this.stream, this.name);
    const messages = await consumer.consume({
      max_messages: this.batch,
      expires: PULL_EXPIRES_MS,
      idle_heartbeat: IDLE_HEARTBEAT_MS,
      callback: (m) => {
        this.passed = m.seq;
        this.onMessage(m, this);
      },
    });
    if (this.stopped) {
      messages.stop();
      return;
    }
    this.messages = messages;
    void this.watch(messages);
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeats_missed') this.recover(`${status.count} heartbeats missed`);
      else if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') this.recover(status.type.replace('_', ' '));
    }
  }

  private async recoverNow(): Promise<void> {
    const started = this.recovering!.since;
    while (!this.stopped) {
      if (await this.hasLeader()) {
        const stale = this.messages;
        this.messages = undefined;
        await stale?.close();
        try {
          await this.pull();
          this.confirmRecentAcks();
          const ms = Date.now() - started;
          const { reason } = this.recovering!;
          if (ms < ROUTINE_RECOVERY_MS) this.context.logger.debug(`consumer ${this.name} delivers again after ${ms} ms (${reason})`);
          else this.context.logger.warn(`consumer ${this.name} delivers again after ${ms} ms without delivering (${reason})`);
          return;
        } catch {
          // asked again below
        }
      }
      await sleep(RECOVERY_POLL_MS);
    }
  }

  private confirmRecentAcks(): void {
    for (const reply of this.recentAcks) if (reply !== undefined) this.context.acks.confirm(reply);
    this.recentAcks.fill(undefined);
  }

  /** True once the consumer answers with a leader; a consumer that is gone is recreated (and asked for again). */
  private async hasLeader(): Promise<boolean> {
    try {
      const info = await this.context.probe.consumers.info(this.stream, this.name);
      return !info.cluster || !!info.cluster.leader;
    } catch (error) {
      if (isNotFound(error)) await this.recreate();
      return false;
    }
  }

  /**
   * Creates the consumer again under its name, after the sequence it had passed; as configured only when
   * that is unknown and the configuration is a start time or the whole stream.
   */
  private async recreate(): Promise<void> {
    const { opt_start_time, ...config } = this.config;
    const known = this.passed > 0 || config.deliver_policy === DeliverPolicy.New;
    const from = known ? { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.passed + 1 } : this.config;
    this.context.logger.warn(`consumer ${this.name} is gone; creating it again${known ? ` from stream sequence ${this.passed + 1}` : ''}`);
    // May time out during an election yet take effect: the next ask tells.
    await this.context.probe.consumers.add(this.stream, from).catch(() => undefined);
  }
}
