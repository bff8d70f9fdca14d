import { Inject, Injectable } from '@nestjs/common';
import { EVENT_TRANSPORT } from './constants.js';
import type { DeadLetter, DeadLetterPage, DeadLetterQuery, DeadLetterStore } from './delivery/dead-letter-store.js';
import type { EventTransport } from './transport/event-transport.js';

/**
 * Events whose handlers failed on every attempt (or that could not be decoded), kept by the durable
 * transport with their reason. Replaying sends them back to the group that gave up on them only.
 */
@Injectable()
export class DeadLetters {
  constructor(@Inject(EVENT_TRANSPORT) private readonly transport: EventTransport) {}

  /** One page of dead letters, oldest first; pass `next` as `after` for the following page. */
  page(query?: DeadLetterQuery): Promise<DeadLetterPage> {
    return this.store().list(query);
  }

  /** Every dead letter, oldest first, read a page at a time. */
  async list(): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    let after: string | undefined;
    do {
      const page = await this.store().list({ after });
      letters.push(...page.letters);
      after = page.next;
    } while (after !== undefined);
    return letters;
  }

  /** How many dead letters are kept. */
  count(): Promise<number> {
    return this.store().count();
  }

  /** Replays the dead letters of one event id (one per group that gave up on it); rejects when there is none. */
  async replay(id: string): Promise<number> {
    const letters = (await this.list()).filter((letter) => letter.id === id);
    if (letters.length === 0) throw new Error(`no dead letter for event ${id}`);
    await this.store().replay(letters);
    return letters.length;
  }

  /** Replays every dead letter kept when it is called (not those that fail again meanwhile); resolves to how many. */
  async replayAll(): Promise<number> {
    const letters = await this.list();
    await this.store().replay(letters);
    return letters.length;
  }

  private store(): DeadLetterStore {
    const store = this.transport.deadLetters;
    if (!store) {
      throw new Error(`dead letters are kept by durable transports only (such as EVENT_BUS_TRANSPORT=jetstream); this one is ${this.transport.status().transport}`);
    }
    return store;
  }
}
