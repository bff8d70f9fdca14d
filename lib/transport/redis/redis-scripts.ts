import { createHash } from 'node:crypto';
import type { RedisClient, Reply } from './redis-client.js';

/** A Lua script, run by its hash (EVALSHA), sent again in full when the server does not know it (after a restart). */
export class RedisScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<Reply> {
    try {
      return await client.sendCommand(['EVALSHA', this.sha, String(keys.length), ...keys, ...args]);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return this.runInOrder(client, keys, args);
    }
  }

  /**
   * Runs it with its source every time (EVAL), so that it runs where it was sent among the connection's
   * other commands: a NOSCRIPT answer, sent again, would run after those sent meanwhile.
   */
  runInOrder(client: RedisClient, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<Reply> {
    return client.sendCommand(['EVAL', this.source, String(keys.length), ...keys, ...args]);
  }
}

/** Slices of the duplicate window: the ids of one slice are a hash, freed as a whole once the window has passed it. */
export const WINDOW_SLICES = 4;

/**
 * Appends a batch of events to the stream (KEYS[1]), each unless its id was appended within the
 * window (ARGV[1] ms): a retried publish is stored once. Appended ids are kept in a hash per slice of
 * the window (ARGV[2] is the hashes' key prefix, the slice numbered by the server's clock, so that
 * publishers agree); the current slice and the WINDOW_SLICES before it span at least the window. A
 * hash per slice rather than a key with an expiry per id took a third off the script's cost per event.
 * A new slice frees the one that fell out of the window in the background (UNLINK); each also expires.
 * ARGV[3] is how many XADD arguments precede the fields (trimming, the `*` id), those follow; then
 * per entry its subject, id and data. Returns how many were appended. A failing append fails the
 * call; the entries before it are stored and remembered (their publishers are told it may be so).
 */
export const appendAllOnce = new RedisScript(`
local window, prefix, heads = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local slice = math.ceil(window / ${WINDOW_SLICES})
local time = redis.call('TIME')
local current = math.floor((tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)) / slice)
local xadd = {'XADD', KEYS[1]}
for i = 1, heads do xadd[#xadd + 1] = ARGV[3 + i] end
local at = #xadd
xadd[at + 1], xadd[at + 3], xadd[at + 5] = 'subject', 'id', 'data'
local first = 4 + heads
local ids = {}
for i = first + 1, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
local seen = {}
for back = 0, ${WINDOW_SLICES} do
  local found = redis.call('HMGET', prefix .. (current - back), unpack(ids))
  for n = 1, #ids do if found[n] then seen[ids[n]] = true end end
end
local fresh = {}
local function remember()
  if #fresh == 0 then return end
  local key = prefix .. current
  redis.call('HSET', key, unpack(fresh))
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, slice * (${WINDOW_SLICES} + 2))
    redis.call('UNLINK', prefix .. (current - ${WINDOW_SLICES} - 1))
  end
end
for n = 1, #ids do
  local id = ids[n]
  if not seen[id] then
    local a = first + 3 * (n - 1)
    xadd[at + 2], xadd[at + 4], xadd[at + 6] = ARGV[a], id, ARGV[a + 2]
    local ok, failure = pcall(redis.call, unpack(xadd))
    if not ok then
      remember()
      return redis.error_reply(failure.err or tostring(failure))
    end
    seen[id] = true
    fresh[#fresh + 1] = id
    fresh[#fresh + 1] = '1'
  end
end
remember()
return #fresh / 2
`);

/**
 * Claims the group's scheduled retries that are due (KEYS[1] the stream, KEYS[2] its retry schedule,
 * a sorted set of entry ids by due time) for consumer ARGV[2]; ARGV[1] group, ARGV[3] now, ARGV[4] limit.
 * Atomic, so that a due retry goes to exactly one member. Returns `{id, fields, deliveries}` per entry;
 * fields are empty for an entry trimmed from the stream meanwhile.
 */
export const claimDue = new RedisScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending > 0 then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    if #claimed > 0 then out[#out + 1] = {id, claimed[1][2], pending[1][4] + 1}
    else out[#out + 1] = {id, {}, pending[1][4]} end
  end
end
return out
`);

/**
 * Claims pending entries that nobody is working on for consumer ARGV[2] (KEYS as claimDue; ARGV[1]
 * group, ARGV[3] mode, ARGV[4] limit, ARGV[5] the heartbeat key prefix, ARGV[6..] ids to leave, being
 * handled here). Mode `self`: this consumer's own (replies lost in a reconnect, or left by an earlier
 * process with this instance id); `dead`: those of consumers whose heartbeat expired (deleting such
 * consumers once they hold nothing); `all`: every consumer's (an ordered group's new lock holder).
 * Scheduled retries are never taken: they belong to the schedule until due.
 */
export const claimStranded = new RedisScript(`
local group, me, mode, limit, alive = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local skip = {}
for i = 6, #ARGV do skip[ARGV[i]] = true end
local out = {}
local function take(pending)
  for _, p in ipairs(pending) do
    local id = p[1]
    if #out < limit and not skip[id] and not redis.call('ZSCORE', KEYS[2], id) then
      local claimed = redis.call('XCLAIM', KEYS[1], group, me, 0, id)
      if #claimed > 0 then out[#out + 1] = {id, claimed[1][2], p[4] + 1}
      else out[#out + 1] = {id, {}, p[4]} end
    end
  end
end
if mode == 'self' then
  take(redis.call('XPENDING', KEYS[1], group, '-', '+', limit, me))
elseif mode == 'all' then
  take(redis.call('XPENDING', KEYS[1], group, '-', '+', limit))
else
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], group)) do
    local name, pending = c[2], c[4]
    if name ~= me and redis.call('EXISTS', alive .. name) == 0 then
      if pending > 0 then take(redis.call('XPENDING', KEYS[1], group, '-', '+', limit, name)) end
      if redis.call('XPENDING', KEYS[1], group, '-', '+', 1, name)[1] == nil then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, name)
      end
    end
  end
end
return out
`);

/**
 * An ordered group's lock (KEYS[1]) for consumer ARGV[1], for ARGV[2] ms: 1 when it is held and
 * extended, 2 when it was free and is taken now, 0 when another member holds it.
 */
export const holdLock = new RedisScript(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
`);

/** Releases KEYS[1] if consumer ARGV[1] holds it. */
export const releaseLock = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
