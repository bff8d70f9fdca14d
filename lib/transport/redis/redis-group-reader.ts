import type { Logger } from '@nestjs/common';
import { deferred, type Deferred } from '../../deferred.js';
import type { DeliveryOptions, StartPosition } from '../../delivery/delivery-options.js';
import type { DurableDelivery, DurableMessage } from '../../delivery/durable-delivery.js';
import { subjectMatches } from '../../routing/subject-pattern.js';
import type { TransportMessageHandler } from '../event-transport.js';
import type { RedisClient, Reply } from './redis-client.js';
import type { ReceivedEntry, RedisDeadLetters } from './redis-dead-letters.js';
import type { RedisKeys } from './redis-keys.js';
import { claimDue, claimStranded, holdLock, releaseLock } from './redis-scripts.js';

/** How often a group reads the replays of its dead letters (they wait at most this long); a blocking read of the events waits until then. */
const REPLAYS_READ_MS = 1_000;
/** Entries one claim takes at most; more wait for the next claim. */
const CLAIM_LIMIT = 100;
/** Distinct subjects whose match a reader remembers. */
const MAX_CACHED_SUBJECTS = 10_000;
/** Entries awaiting a retry whose members that succeeded a reader remembers; past this the oldest are forgotten. */
const MAX_REMEMBERED_RETRIES = 10_000;
const PATTERNS = Buffer.from('patterns');
const NO_MEMBERS: readonly GroupMember[] = [];
const SUBJECT = Buffer.from('subject');
const ID = Buffer.from('id');
const DATA = Buffer.from('data');
const NO_DATA: Buffer = Buffer.alloc(0);

const ignore = () => undefined;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What XREADGROUP answers (blob strings as Buffers): per stream its entries, or null when none came. */
type ReadReply = [Buffer, [Buffer, Reply][]][] | null;

/** What a group reader uses of its transport. */
export interface ReaderContext {
  readonly keys: RedisKeys;
  /** This instance's consumer name within every group. */
  readonly consumer: string;
  /** The shared command connection, blob strings as Buffers. */
  readonly commands: RedisClient;
  readonly delivery: DurableDelivery;
  readonly deadLetters: RedisDeadLetters;
  readonly claimAfterMs: number;
  readonly maxInFlight: number;
  readonly logger: Logger;
  /** A connection of its own for blocking reads (blob strings as Buffers). */
  openConnection(): Promise<RedisClient>;
  /** Work a clean stop waits for (it never rejects: failures are logged where they happen). */
  track(work: Promise<unknown>): void;
}

/** A Redis consumer group as this instance reads it. */
export interface GroupSpec {
  readonly name: string;
  /** The bus's group, or `instance-<id>`: what dead letters name. */
  readonly scope: string;
  readonly delivery: DeliveryOptions;
}

/** One subscription read through a group: entries of other subjects are not its. */
export interface GroupMember {
  readonly subject: string;
  readonly handler: TransportMessageHandler;
}

/** One stream a group reads: the events, or the group's replays of dead letters. */
interface Source {
  readonly key: string;
  readonly retries: string;
  /** Entry ids being handled here. */
  readonly inFlight: Set<string>;
  /** Entry ids to ack with the next XACK, and what their acks await. */
  acks: string[];
  acked?: Deferred;
}

/** Where a new group starts: after the last entry, at the first, or at the first entry of that millisecond. */
function startId(start: StartPosition): string {
  if (start === 'new') return '$';
  if (start === 'all' || start.getTime() <= 0) return '0';
  return `${start.getTime() - 1}-18446744073709551615`;
}

const isNoGroup = (error: unknown) => String((error as Error)?.message).startsWith('NOGROUP');

/**
 * One consumer group: reads new entries with a blocking XREADGROUP on a connection of its own (the
 * events; its replays once a second), acks at once the entries no member's subject matches, and hands
 * the rest to the durable delivery, which runs the matching members (on a retry, those that have not
 * succeeded yet). Failed entries stay pending, scheduled in a sorted set by due time, and
 * are claimed again when due by whichever member runs first. Entries of members whose heartbeat expired
 * are claimed by the others; an ordered group is read by the holder of its lock only, one entry at a time.
 */
export class GroupReader {
  private readonly events: Source;
  private readonly replays: Source;
  private members: readonly GroupMember[] = [];
  private readonly patterns = new Map<GroupMember, readonly string[]>();
  private readonly matches = new Map<string, readonly GroupMember[]>();
  /** Entry id -> the members that succeeded, while the entry awaits a retry. */
  private readonly succeeded = new Map<string, Set<GroupMember>>();
  private readonly window: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private connection?: RedisClient;
  private connectionId?: Promise<unknown>;
  private stopped = false;
  /** What to claim before the next read: this member's own pending entries (after a reconnect), or all (a new lock holder). */
  private recover: 'self' | 'all' | undefined = 'self';
  private holdsLock = false;
  private maintaining = false;
  private maintenance?: NodeJS.Timeout;
  private reading?: Promise<void>;
  private wake?: () => void;
  /** When the replays are read next. */
  private replaysDue = 0;
  /** The next read of the events, sent while the last one's entries are handled. */
  private readAhead?: Promise<ReadReply>;

  constructor(
    private readonly context: ReaderContext,
    readonly spec: GroupSpec,
  ) {
    const { keys } = context;
    const source = (key: string): Source => ({ key, retries: keys.retries(key, spec.name), inFlight: new Set(), acks: [] });
    this.events = source(keys.stream);
    this.replays = source(keys.replay(spec.name));
    this.window = spec.delivery.ordered ? 1 : context.maxInFlight;
  }

  add(member: GroupMember): void {
    this.members = [...this.members, member];
    this.patterns.set(member, member.subject.split('.'));
    this.matches.clear();
  }

  /** Removes a member; true when none is left. */
  remove(member: GroupMember): boolean {
    this.members = this.members.filter((m) => m !== member);
    this.patterns.delete(member);
    this.matches.clear();
    return this.members.length === 0;
  }

  /** Creates the group (or joins it where it stands; sent before any later command) and starts reading. */
  async start(): Promise<void> {
    await this.createGroups(startId(this.spec.delivery.start));
    this.connection = await this.context.openConnection();
    if (this.stopped) return this.connection.destroy();
    this.maintenance = setInterval(() => void this.maintain(), Math.max(100, Math.floor(this.context.claimAfterMs / 3)));
    this.reading = this.read();
  }

  /** Stops reading at once (a blocking read is unblocked); handlers running finish on their own. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.maintenance);
    for (const timer of this.timers) clearTimeout(timer);
    this.wakeReader();
    const id = await this.connectionId?.catch(() => undefined);
    if (id !== undefined) await this.context.commands.sendCommand(['CLIENT', 'UNBLOCK', String(id)]).catch(() => undefined);
    await this.reading;
    this.connection?.destroy();
    if (this.holdsLock) await releaseLock.run(this.context.commands, [this.context.keys.lock(this.spec.name)], [this.context.consumer]).catch(() => undefined);
  }

  /** After a reconnect, acks or replies may have been lost: this member's pending entries are claimed again before the next read. */
  reconnected(): void {
    this.recover ??= 'self';
  }

  /** Entries being handled here. */
  get busy(): number {
    return this.events.inFlight.size + this.replays.inFlight.size;
  }

  private async createGroups(start: string): Promise<void> {
    const create = (key: string, id: string) =>
      this.context.commands.sendCommand(['XGROUP', 'CREATE', key, this.spec.name, id, 'MKSTREAM']).catch((error: Error) => {
        if (!String(error.message).startsWith('BUSYGROUP')) throw error;
      });
    await Promise.all([create(this.events.key, start), create(this.replays.key, '0')]);
  }

  private async read(): Promise<void> {
    const group = this.spec.name;
    const { logger } = this.context;
    const connection = this.connection!;
    let failing = false;
    while (!this.stopped) {
      try {
        if (this.spec.delivery.ordered && !this.holdsLock && !(await this.takeLock())) {
          await this.pause(this.context.claimAfterMs / 3);
          continue;
        }
        if (this.recover) {
          const mode = this.recover;
          this.recover = undefined;
          await this.claim(this.events, mode);
          await this.claim(this.replays, mode);
        }
        await this.capacity();
        if (this.stopped) break;
        // Replays (dead letters sent back) are rare: read without blocking once a second, so that the blocking
        // read waits on the events alone (blocked on two streams, a read cost Redis half as much again per entry).
        if (Date.now() >= this.replaysDue) {
          this.replaysDue = Date.now() + REPLAYS_READ_MS;
          // A read sent ahead is over by now (it blocked until the replays were due): its entries count first.
          await this.handOverReadAhead();
          await this.readFrom(connection, this.replays);
          await this.capacity();
          if (this.stopped) break;
        }
        const read = await (this.takeReadAhead() ?? this.readEvents(connection));
        const handed = this.handOver(this.events, read);
        // While these are handled, the next read is on its way (an unordered group's entries are handed over at
        // once): its reply waits for them when they are done.
        if (read && !this.spec.delivery.ordered && this.busy < this.window && !this.recover && !this.stopped && Date.now() < this.replaysDue) {
          this.readAhead = this.readEvents(connection);
          this.readAhead.catch(ignore); // awaited in the next turn, or at the end
        }
        await handed;
        if (failing) logger.log(`reading ${group} again`);
        failing = false;
      } catch (error) {
        // Handed over before anything is claimed: a claim of this member's own pending entries would take them too.
        await this.handOverReadAhead();
        if (this.stopped) break;
        if (isNoGroup(error)) {
          // The server lost the group (restarted without persistence): what is in the stream now came after.
          logger.warn(`group ${group} is gone from Redis; creating it again from the start of the stream`);
          await this.createGroups('0').catch(() => undefined);
        } else if (!failing) {
          logger.warn(`reading ${group} failed: ${(error as Error).message}; retrying`);
        }
        failing = true;
        this.recover ??= 'self';
        await this.pause(250);
      }
    }
    // A read sent ahead before the stop: what it took is this member's now, handed to the delivery (which gives it back).
    await this.handOverReadAhead();
  }

  /** The read sent ahead, if any, which is then no longer outstanding. */
  private takeReadAhead(): Promise<ReadReply> | undefined {
    const ahead = this.readAhead;
    this.readAhead = undefined;
    return ahead;
  }

  /** Waits for the read sent ahead, if any, and hands over what it took (a failed one took nothing). */
  private async handOverReadAhead(): Promise<void> {
    const ahead = this.takeReadAhead();
    if (ahead) await this.handOver(this.events, await ahead.catch(() => null));
  }

  /** A blocking read of the events, until the replays are due; its id is asked for with each (pipelined): after a reconnect it is another. */
  private readEvents(connection: RedisClient): Promise<ReadReply> {
    this.connectionId = connection.sendCommand(['CLIENT', 'ID']).catch(ignore);
    return this.send(connection, this.events, Math.max(1, this.replaysDue - Date.now()));
  }

  /** Reads new entries of one source without blocking, and hands them to the delivery. */
  private async readFrom(connection: RedisClient, source: Source): Promise<void> {
    await this.handOver(source, await this.send(connection, source));
  }

  /**
   * Sends a read of new entries of one source (blocking for up to `blockMs` when given), as many as the window
   * has room for. The acks of what was handled since go first, in the same write.
   */
  private send(connection: RedisClient, source: Source, blockMs?: number): Promise<ReadReply> {
    const block = blockMs === undefined ? [] : ['BLOCK', String(blockMs)];
    this.sendAcks(source, connection);
    return connection.sendCommand([
      'XREADGROUP', 'GROUP', this.spec.name, this.context.consumer, 'COUNT', String(this.window - this.busy), ...block, 'STREAMS', source.key, '>',
    ]) as Promise<ReadReply>;
  }

  /** Hands what a read returned to the delivery; an ordered group's entries one at a time (resolves when all ran). */
  private async handOver(source: Source, reply: ReadReply): Promise<void> {
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      const handled = this.dispatch(source, id.toString(), fields, 1);
      if (this.spec.delivery.ordered) await handled;
    }
  }

  /** For an ordered group: takes or extends its lock; whether this member holds it. A member that takes it claims everything pending first. */
  private async takeLock(): Promise<boolean> {
    const held = await holdLock.run(this.context.commands, [this.context.keys.lock(this.spec.name)], [this.context.consumer, String(this.context.claimAfterMs)]);
    this.holdsLock = held !== 0;
    if (held === 2) this.recover = 'all';
    return this.holdsLock;
  }

  /** Waits until fewer than the window's entries are being handled here. */
  private async capacity(): Promise<void> {
    while (this.busy >= this.window && !this.stopped) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  private pause(ms: number): Promise<void> {
    return Promise.race([sleep(ms), new Promise<void>((resolve) => (this.wake = resolve))]);
  }

  /** Hands an entry to the delivery, or acks it at once when no member's subject matches. */
  private dispatch(source: Source, entryId: string, fields: Reply, deliveries: number): Promise<void> | undefined {
    let subject: string | undefined;
    let eventId: string | undefined;
    let data: Buffer = NO_DATA;
    let patterns: string[] | undefined;
    if (Array.isArray(fields)) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i] as Buffer;
        const value = fields[i + 1] as Buffer;
        // By length first: each field is compared with one name at most.
        switch (name.length) {
          case SUBJECT.length:
            if (SUBJECT.equals(name)) subject = value.toString();
            break;
          case ID.length:
            if (ID.equals(name)) eventId = value.length > 0 ? value.toString() : undefined;
            break;
          case DATA.length:
            if (DATA.equals(name)) data = value;
            break;
          case PATTERNS.length:
            if (PATTERNS.equals(name)) patterns = value.toString().split('\n');
        }
      }
    }
    const entry: ReceivedEntry = { source: source.key, group: this.spec.name, entryId, subject: subject ?? '', eventId, data };
    if (subject === undefined) {
      const why = Array.isArray(fields) && fields.length > 0 ? 'the entry has no "subject" field' : 'the entry was trimmed from the stream before it was handled';
      return this.track(source, entryId, this.deadLetter(entry, deliveries - 1, new Error(why), NO_MEMBERS));
    }
    let targets = this.membersFor(subject);
    // A replay goes back to the members that gave up on it only.
    if (patterns) targets = targets.filter((m) => patterns.includes(m.subject));
    if (targets.length === 0) {
      if (source === this.events) {
        // Not acked (a lost connection): pending here, claimed again after the reconnect.
        this.ack(source, entryId).catch(ignore);
        return undefined;
      }
      return this.track(source, entryId, this.deadLetter(entry, 0, new Error(`replayed, but ${this.spec.scope} has no handler for ${subject} any more`), NO_MEMBERS));
    }
    const key = `${source.key}\n${entryId}`;
    const message: DurableMessage = {
      eventId,
      deliveryCount: deliveries,
      ack: () => {
        this.succeeded.delete(key);
        // Its slot in the window is free once the handlers are done: the next read need not wait for the ack's reply.
        this.release(source, entryId);
        return this.ack(source, entryId);
      },
      retryLater: (delayMs) => this.schedule(source, entryId, delayMs),
      deadLetter: (attempts, error) => {
        const done = this.succeeded.get(key);
        this.succeeded.delete(key);
        return this.deadLetter(entry, attempts, error, done ? targets.filter((m) => !done.has(m)) : targets);
      },
    };
    const run = (attempt: number) => this.run(key, targets, subject, data, attempt);
    return this.track(source, entryId, this.context.delivery.deliver(message, this.spec.name, this.spec.delivery, run));
  }

  /** Runs the members that have not succeeded on this entry yet; rejects with the first failure, remembering who succeeded. */
  private run(key: string, targets: readonly GroupMember[], subject: string, data: Buffer, attempt: number): Promise<unknown> | undefined {
    const done = this.succeeded.get(key);
    if (targets.length === 1 && !done) return targets[0].handler(subject, data, attempt, undefined);
    const succeeded = done ?? new Set<GroupMember>();
    const runs = targets
      .filter((m) => !succeeded.has(m))
      .map(async (m) => {
        await m.handler(subject, data, attempt, undefined);
        succeeded.add(m);
      });
    return Promise.allSettled(runs).then((results) => {
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failure) return;
      if (this.succeeded.size >= MAX_REMEMBERED_RETRIES) this.succeeded.delete(this.succeeded.keys().next().value!);
      this.succeeded.set(key, succeeded);
      throw failure.reason;
    });
  }

  private track(source: Source, entryId: string, work: Promise<void>): Promise<void> {
    source.inFlight.add(entryId);
    const done = work.then(
      () => this.release(source, entryId),
      (error: Error) => {
        this.context.logger.error(`handling ${entryId} of ${this.spec.name} failed: ${error.message}`, error.stack);
        this.release(source, entryId);
      },
    );
    this.context.track(done);
    return done;
  }

  /** The entry is no longer handled here: its slot in the read window is free. */
  private release(source: Source, entryId: string): void {
    if (source.inFlight.delete(entryId)) this.wakeReader();
  }

  /** Ends the reader's wait for a slot, or its pause; a later wait sets its own. */
  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private membersFor(subject: string): readonly GroupMember[] {
    let members = this.matches.get(subject);
    if (members === undefined) {
      const tokens = subject.split('.');
      members = this.members.filter((m) => subjectMatches(this.patterns.get(m)!, tokens));
      if (this.matches.size >= MAX_CACHED_SUBJECTS) this.matches.clear();
      this.matches.set(subject, members);
    }
    return members;
  }

  /**
   * Acks in batches: one XACK for the entries acked in the same turn of the event loop, sent then, or
   * sooner ahead of the next read on the reader's connection (one write for both).
   */
  private ack(source: Source, entryId: string): Promise<void> {
    source.acks.push(entryId);
    if (!source.acked) {
      source.acked = deferred();
      setImmediate(() => this.sendAcks(source, this.context.commands));
    }
    return source.acked.promise;
  }

  /** Sends the acks waiting, if any, on the connection given. */
  private sendAcks(source: Source, connection: RedisClient): void {
    const acked = source.acked;
    if (!acked) return;
    const ids = source.acks;
    source.acks = [];
    source.acked = undefined;
    const sent = connection.sendCommand(['XACK', source.key, this.spec.name, ...ids]);
    // Replays are read by this group only: handled, they are gone.
    (source === this.replays ? Promise.all([sent, connection.sendCommand(['XDEL', source.key, ...ids])]) : sent).then(() => acked.resolve(), acked.reject);
  }

  /** Leaves the entry pending, due again after the delay: claimed then by this member or, if it is gone, another. */
  private async schedule(source: Source, entryId: string, delayMs: number): Promise<void> {
    await this.context.commands.sendCommand(['ZADD', source.retries, String(Date.now() + delayMs), entryId]);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.claimDueRetries(source);
    }, delayMs);
    this.timers.add(timer);
  }

  /** Stores the entry with why it failed, for the members that failed; if it cannot be stored, it is retried later instead. */
  private async deadLetter(entry: ReceivedEntry, attempts: number, error: Error, failed: readonly GroupMember[]): Promise<void> {
    const source = entry.source === this.events.key ? this.events : this.replays;
    try {
      await this.context.deadLetters.store(entry, this.spec.scope, attempts, error, failed.map((m) => m.subject));
    } catch (storeError) {
      this.context.logger.error(`could not dead-letter ${entry.entryId} on ${entry.subject}: ${(storeError as Error).message}; it will be retried`);
      return this.schedule(source, entry.entryId, this.context.claimAfterMs);
    }
    this.context.logger.error(`dead-lettered ${entry.eventId ?? entry.entryId} on ${entry.subject} for ${this.spec.scope} after ${attempts} attempts: ${error.message}`, error.stack);
  }

  private async claimDueRetries(source: Source): Promise<void> {
    if (this.stopped) return;
    const group = this.spec.name;
    try {
      const claimed = (await claimDue.run(this.context.commands, [source.key, source.retries], [group, this.context.consumer, String(Date.now()), String(CLAIM_LIMIT)])) as [Buffer, Reply, number][];
      for (const [id, fields, deliveries] of claimed) this.dispatch(source, id.toString(), fields, deliveries);
    } catch (error) {
      if (!isNoGroup(error)) this.context.logger.warn(`claiming due retries of ${group} failed: ${(error as Error).message}`);
    }
  }

  /** Claims pending entries nobody works on (see the claimStranded script) and hands them to the delivery, in order. */
  private async claim(source: Source, mode: 'self' | 'all' | 'dead'): Promise<void> {
    const group = this.spec.name;
    const { delivery } = this.spec;
    const { keys, consumer, commands } = this.context;
    const claimed = (await claimStranded.run(commands, [source.key, source.retries], [
      group, consumer, mode, String(CLAIM_LIMIT), keys.alivePrefix, ...source.inFlight,
    ])) as [Buffer, Reply, number][];
    if (claimed.length > 0) this.context.logger.log(`${group}: took over ${claimed.length} pending entries (${mode === 'dead' ? 'of stopped members' : 'unfinished'})`);
    for (const [id, fields, deliveries] of claimed) {
      const handled = this.dispatch(source, id.toString(), fields, deliveries);
      if (delivery.ordered) await handled;
    }
  }

  /** Every third of the claim time: keeps an ordered group's lock, claims due retries and what stopped members left. */
  private async maintain(): Promise<void> {
    if (this.maintaining || this.stopped) return;
    this.maintaining = true;
    try {
      if (this.spec.delivery.ordered) {
        if (this.holdsLock) await this.takeLock();
      } else {
        await this.claimDueRetries(this.events);
        await this.claimDueRetries(this.replays);
        await this.claim(this.events, 'dead');
        await this.claim(this.replays, 'dead');
      }
    } catch (error) {
      if (!isNoGroup(error)) this.context.logger.warn(`maintaining ${this.spec.name} failed: ${(error as Error).message}`);
    } finally {
      this.maintaining = false;
    }
  }
}
