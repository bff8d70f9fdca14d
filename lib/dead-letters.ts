import { Inject, Injectable } from '@nestjs/common';
import { EVENT_TRANSPORT } from './constants.js';
import type { EventTransport } from './transport/event-transport.js';
import { JetStreamTransport, type DeadLetter } from './transport/jetstream.transport.js';

/**
 * Events whose handlers failed on every attempt (or that could not be decoded), kept in the
 * `<stream>_DLQ` stream with their reason. Replaying sends them back to their group only.
 */
@Injectable()
export class DeadLetters {
  constructor(@Inject(EVENT_TRANSPORT) private readonly transport: EventTransport) {}

  list(): Promise<DeadLetter[]> {
    return this.jetstream().listDeadLetters();
  }

  /** Replays the dead letters of one event id (one per group that gave up on it); rejects when there is none. */
  async replay(id: string): Promise<number> {
    const letters = (await this.list()).filter((letter) => letter.id === id);
    if (letters.length === 0) throw new Error(`no dead letter for event ${id}`);
    await this.jetstream().replayDeadLetters(letters);
    return letters.length;
  }

  /** Replays every dead letter; resolves to how many. */
  async replayAll(): Promise<number> {
    const letters = await this.list();
    await this.jetstream().replayDeadLetters(letters);
    return letters.length;
  }

  private jetstream(): JetStreamTransport {
    if (!(this.transport instanceof JetStreamTransport)) {
      throw new Error('dead letters are kept by the jetstream transport only (EVENT_BUS_TRANSPORT=jetstream)');
    }
    return this.transport;
  }
}
