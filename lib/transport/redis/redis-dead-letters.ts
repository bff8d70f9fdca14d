import { eventTypeOf, deadLetterText, type DeadLetter, type DeadLetterPage, type DeadLetterQuery, type DeadLetterStore } from '../../delivery/dead-letter-store.js';
import type { RedisClient, Reply } from './redis-client.js';
import type { RedisKeys } from './redis-keys.js';
import { RedisScript } from './redis-scripts.js';

/** Letters per page when a query names no limit. */
const DEFAULT_PAGE = 1_000;

/** An entry as a group received it: where from, and its fields. */
export interface ReceivedEntry {
  /** The stream it was read from: the events, or the group's replays. */
  readonly source: string;
  readonly group: string;
  readonly entryId: string;
  readonly subject: string;
  readonly eventId: string | undefined;
  readonly data: Buffer;
}

/** Stores the letter (KEYS[1]) and acknowledges the entry (KEYS[2], group ARGV[1], id ARGV[2]; deleted when ARGV[3] is 1), at once. */
const storeLetter = new RedisScript(`
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('XDEL', KEYS[2], ARGV[2]) end
return 1
`);

/** Moves letter ARGV[1] of KEYS[1] to the replay stream KEYS[2] (its subject, id, data and the subscriptions that gave up), at once. */
const replayLetter = new RedisScript(`
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if not entry then return 0 end
local fields, copy = entry[2], {}
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == 'subject' or name == 'id' or name == 'data' or (name == 'patterns' and fields[i + 1] ~= '') then copy[#copy + 1] = name; copy[#copy + 1] = fields[i + 1] end
end
redis.call('XADD', KEYS[2], '*', unpack(copy))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`);

/** The fields of a flat `[name, value, …]` reply, as strings. */
function fieldsOf(flat: Reply): Map<string, string> {
  const fields = new Map<string, string>();
  if (!Array.isArray(flat)) return fields;
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
  return fields;
}

/**
 * Dead letters in the stream `<stream>:dlq`, one entry each: the original subject, event id and body,
 * the group, the attempts and the error. A replay moves the letter to `<stream>:replay:<group>`, which
 * only the group that gave up reads.
 */
export class RedisDeadLetters implements DeadLetterStore {
  private client?: RedisClient;

  constructor(private readonly keys: RedisKeys) {}

  /** Called once connected. */
  attach(client: RedisClient): void {
    this.client = client;
  }

  /**
   * Stores an entry that failed for good, with why and the subscriptions (subjects) that gave up on it,
   * and acknowledges it; rejects when it could not be stored (the entry stays pending).
   */
  async store(entry: ReceivedEntry, scope: string, attempts: number, error: Error, patterns: readonly string[]): Promise<void> {
    const replayed = entry.source !== this.keys.stream;
    await storeLetter.run(this.connected(), [this.keys.deadLetters, entry.source], [
      entry.group, entry.entryId, replayed ? '1' : '0',
      'subject', entry.subject,
      'id', entry.eventId ?? '',
      'type', eventTypeOf(entry.data),
      'group', scope,
      'consumer', entry.group,
      'attempts', String(attempts),
      'error', deadLetterText(`${error.name}: ${error.message}`),
      'patterns', patterns.join('\n'),
      'data', entry.data,
    ]);
  }

  /** One page of letters, oldest first. */
  async list(query: DeadLetterQuery = {}): Promise<DeadLetterPage> {
    const limit = query.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`dead letters: limit must be an integer >= 1, got ${limit}`);
    if (query.after !== undefined && !/^\d+-\d+$/.test(query.after)) {
      throw new Error(`dead letters: after must be the ref of a dead letter, got ${JSON.stringify(query.after)}`);
    }
    const from = query.after === undefined ? '-' : `(${query.after}`;
    const entries = (await this.connected().sendCommand(['XRANGE', this.keys.deadLetters, from, '+', 'COUNT', String(limit + 1)])) as [string, Reply][];
    const letters = entries.slice(0, limit).map(([ref, flat]) => toLetter(ref, fieldsOf(flat)));
    return { letters, next: entries.length > limit ? letters[letters.length - 1].ref : undefined };
  }

  /** Sends letters back to the group that gave up on them and removes them; they are dead-lettered again if they fail again. */
  async replay(letters: readonly DeadLetter[]): Promise<void> {
    const client = this.connected();
    for (const letter of letters) {
      const [entry] = (await client.sendCommand(['XRANGE', this.keys.deadLetters, letter.ref, letter.ref])) as [string, Reply][];
      const consumer = entry && fieldsOf(entry[1]).get('consumer');
      if (!consumer) continue;
      await replayLetter.run(client, [this.keys.deadLetters, this.keys.replay(consumer)], [letter.ref]);
    }
  }

  async count(): Promise<number> {
    return (await this.connected().sendCommand(['XLEN', this.keys.deadLetters])) as number;
  }

  private connected(): RedisClient {
    if (!this.client) throw new Error('dead letters: the Redis transport is not connected');
    return this.client;
  }
}

function toLetter(ref: string, fields: Map<string, string>): DeadLetter {
  return {
    ref,
    id: fields.get('id') ?? '',
    type: fields.get('type') ?? '',
    group: fields.get('group') ?? '',
    subject: fields.get('subject') ?? '',
    attempts: Number(fields.get('attempts')),
    error: fields.get('error') ?? '',
    time: new Date(Number(ref.slice(0, ref.indexOf('-')))),
  };
}
