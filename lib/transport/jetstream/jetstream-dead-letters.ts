import { Match, headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { deadLetterText, eventTypeOf, type DeadLetter, type DeadLetterPage, type DeadLetterQuery, type DeadLetterStore } from '../../delivery/dead-letter-store.js';
import type { ResolvedJetStreamOptions } from './jetstream-options.js';
import { deadLetterPrefix, deadLetterStream } from './jetstream-streams.js';

/** Headers of dead letters and replays in the dead-letter stream. */
export const Header = {
  MsgId: 'Nats-Msg-Id',
  Subject: 'Dlq-Subject',
  Scope: 'Dlq-Scope',
  Consumer: 'Dlq-Consumer',
  Attempts: 'Dlq-Attempts',
  Error: 'Dlq-Error',
  EventId: 'Dlq-Event-Id',
  Type: 'Dlq-Type',
} as const;

/** Letters per page when a query names no limit. */
const DEFAULT_PAGE = 1_000;
/** Letters replayed at once: each is read, published and removed in pipelined requests. */
const REPLAY_WINDOW = 256;
/** How long one page may take to arrive. */
const PAGE_TIMEOUT_MS = 5_000;

/** A binary-mode CloudEvent's attribute headers (`ce-…`), kept with its dead letter so that a replay can be decoded. */
const isAttributeHeader = (name: string): boolean => name.length > 3 && name.slice(0, 3).toLowerCase() === 'ce-';

function copyAttributeHeaders(from: MsgHdrs | undefined, to: MsgHdrs): void {
  for (const [name, values] of from ?? []) if (isAttributeHeader(name)) for (const value of values) to.append(name, value);
}

/** The CloudEvents type of a message, for the dead-letter listing (binary mode: its `ce-type` header); empty when it is not one. */
const typeOf = (m: JsMsg): string => m.headers?.get('ce-type', Match.IgnoreCase) || eventTypeOf(m.data);

/**
 * Dead letters in `<stream>_DLQ`: each on `dlq.<prefix>.dead.<scope>` with the original subject,
 * the consumer, the attempts and the error in headers. A replay is published to
 * `dlq.<prefix>.replay.<scope>`, where the scope's replay consumer picks it up.
 */
export class JetStreamDeadLetters implements DeadLetterStore {
  /** The dead-letter stream. */
  readonly stream: string;
  private readonly deadSubjects: string;
  private readonly replayPrefix: string;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;

  constructor(subjectPrefix: string, options: ResolvedJetStreamOptions) {
    this.stream = deadLetterStream(options);
    this.deadSubjects = `${deadLetterPrefix(subjectPrefix)}.dead.>`;
    this.replayPrefix = `${deadLetterPrefix(subjectPrefix)}.replay.`;
  }

  /** The subject a scope's replays arrive on. */
  replaySubject(scope: string): string {
    return this.replayPrefix + scope;
  }

  /** @internal Called once connected. */
  attach(js: JetStreamClient, jsm: JetStreamManager): void {
    this.js = js;
    this.jsm = jsm;
  }

  /** @internal Stores a message that failed for good, with why; rejects when it could not be stored (the caller redelivers it then). */
  async store(m: JsMsg, subject: string, scope: string, consumer: string, attempts: number, error: Error): Promise<string> {
    const h: MsgHdrs = natsHeaders();
    const id = m.headers?.get(Header.EventId) || m.headers?.get(Header.MsgId) || m.headers?.get('ce-id', Match.IgnoreCase) || '';
    copyAttributeHeaders(m.headers, h);
    h.set(Header.Subject, subject);
    h.set(Header.Scope, scope);
    h.set(Header.Consumer, consumer);
    h.set(Header.Attempts, String(attempts));
    h.set(Header.Error, deadLetterText(`${error.name}: ${error.message}`));
    h.set(Header.EventId, deadLetterText(id));
    h.set(Header.Type, deadLetterText(typeOf(m)));
    const deadSubject = this.deadSubjects.slice(0, -1) + scope;
    await this.clients().js.publish(deadSubject, m.data, { headers: h, msgID: `dead-${consumer}-${id || m.seq}-${m.info.streamSequence}` });
    return id;
  }

  /** One page of letters, oldest first, read in one batch through an ordered consumer. */
  async list(query: DeadLetterQuery = {}): Promise<DeadLetterPage> {
    const limit = query.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`dead letters: limit must be an integer >= 1, got ${limit}`);
    const after = query.after === undefined ? 0 : Number(query.after);
    if (!Number.isSafeInteger(after) || after < 0) throw new Error(`dead letters: after must be the ref of a dead letter, got ${JSON.stringify(query.after)}`);
    const consumer = await this.clients().js.consumers.get(this.stream, { filter_subjects: this.deadSubjects, opt_start_seq: after + 1 });
    try {
      const pending = (await consumer.info()).num_pending;
      const wanted = Math.min(limit, pending);
      const letters: DeadLetter[] = [];
      if (wanted > 0) {
        const messages = await consumer.fetch({ max_messages: wanted, expires: PAGE_TIMEOUT_MS });
        for await (const m of messages) {
          letters.push(toLetter(m));
          if (letters.length === wanted) break;
        }
      }
      const next = pending > letters.length && letters.length > 0 ? letters[letters.length - 1].ref : undefined;
      return { letters, next };
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /**
   * Sends letters back to their group (or instance) and removes them; they are dead-lettered again if
   * they fail again. Reads, publishes and removals go out a window at a time, each window pipelined.
   */
  async replay(letters: readonly DeadLetter[]): Promise<void> {
    const { js, jsm } = this.clients();
    for (let from = 0; from < letters.length; from += REPLAY_WINDOW) {
      const window = letters.slice(from, from + REPLAY_WINDOW);
      const read = await Promise.all(window.map(async (letter) => ({ letter, original: await jsm.streams.getMessage(this.stream, { seq: Number(letter.ref) }) })));
      const replayed = read.filter((r) => r.original); // one gone meanwhile (replayed elsewhere) is skipped
      await Promise.all(
        replayed.map(({ letter, original }) => {
          const h = natsHeaders();
          copyAttributeHeaders(original!.header, h);
          h.set(Header.Subject, letter.subject);
          h.set(Header.EventId, letter.id);
          h.set(Header.Consumer, original!.header.get(Header.Consumer));
          return js.publish(this.replaySubject(letter.group), original!.data, { headers: h, msgID: `replay-${this.stream}-${letter.ref}` });
        }),
      );
      await Promise.all(replayed.map(({ letter }) => this.remove(Number(letter.ref))));
    }
  }

  /** Removes a message from the dead-letter stream: a replayed letter, or a replay once handled. */
  async remove(seq: number): Promise<void> {
    await this.clients().jsm.streams.deleteMessage(this.stream, seq, false);
  }

  async count(): Promise<number> {
    const info = await this.clients().jsm.streams.info(this.stream, { subjects_filter: this.deadSubjects });
    return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
  }

  private clients(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (!this.js || !this.jsm) throw new Error('dead letters: the JetStream transport is not connected');
    return { js: this.js, jsm: this.jsm };
  }
}

function toLetter(m: JsMsg): DeadLetter {
  const h = m.headers;
  return {
    ref: String(m.seq),
    id: h?.get(Header.EventId) ?? '',
    type: h?.get(Header.Type) ?? '',
    group: h?.get(Header.Scope) ?? '',
    subject: h?.get(Header.Subject) ?? '',
    attempts: Number(h?.get(Header.Attempts)),
    error: h?.get(Header.Error) ?? '',
    time: m.time,
  };
}
