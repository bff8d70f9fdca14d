import { jest } from '@jest/globals';
import { DecodeError } from '../../lib/codec/codec-errors.js';
import { DurableDelivery, HandlerTimeoutError, type DurableMessage } from '../../lib/delivery/durable-delivery.js';
import { MemoryIdempotencyStore } from '../../lib/delivery/idempotency-store.js';
import { RetryPolicy } from '../../lib/delivery/retry-policy.js';

describe('RetryPolicy', () => {
  const retry = { attempts: 10, initialDelayMs: 200, maxDelayMs: 5_000 };
  const delivery = { attempts: 3, start: 'new' as const, ordered: false };

  it('doubles from the initial delay up to the cap, with jitter in the upper half', () => {
    const highest = new RetryPolicy(retry, () => 1);
    const lowest = new RetryPolicy(retry, () => 0);
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => highest.delayMs(attempt))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
    expect([1, 2, 3].map((attempt) => lowest.delayMs(attempt))).toEqual([100, 200, 400]);
    const random = new RetryPolicy(retry);
    for (let i = 0; i < 100; i++) {
      const delay = random.delayMs(3);
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });

  it('retries until the last attempt, then dead-letters; an undecodable message at once', () => {
    const policy = new RetryPolicy(retry, () => 1);
    expect(policy.afterFailure(1, new Error('x'), delivery)).toEqual({ action: 'retry', delayMs: 200 });
    expect(policy.afterFailure(2, new Error('x'), delivery)).toEqual({ action: 'retry', delayMs: 400 });
    expect(policy.afterFailure(3, new Error('x'), delivery)).toEqual({ action: 'dead-letter' });
    expect(policy.afterFailure(1, new DecodeError('malformed', 'bad'), delivery)).toEqual({ action: 'dead-letter' });
    expect(policy.exhausted(3, delivery)).toBe(false);
    expect(policy.exhausted(4, delivery)).toBe(true);
  });
});

describe('MemoryIdempotencyStore', () => {
  it('remembers handled ids per scope for its window', async () => {
    let now = 1_000_000;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const store = new MemoryIdempotencyStore(1_000);
      await store.record('billing', 'e1');
      expect(await store.seen('billing', 'e1')).toBe(true);
      expect(await store.seen('audit', 'e1')).toBe(false);
      expect(await store.seen('billing', 'e2')).toBe(false);
      now += 1_001;
      expect(await store.seen('billing', 'e1')).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('MemoryIdempotencyStore size cap', () => {
  it('keeps at most maxEntries ids, forgetting the oldest first', async () => {
    const store = new MemoryIdempotencyStore(60_000, 3);
    for (const id of ['e1', 'e2', 'e3', 'e4', 'e5']) await store.record('billing', id);
    expect(store.size).toBe(3);
    expect(await Promise.all(['e1', 'e2', 'e3', 'e4', 'e5'].map((id) => store.seen('billing', id)))).toEqual([false, false, true, true, true]);
    await store.record('billing', 'e3'); // recorded again: the newest now
    await store.record('billing', 'e6');
    expect(await Promise.all(['e3', 'e4', 'e5', 'e6'].map((id) => store.seen('billing', id)))).toEqual([true, false, true, true]);
  });

  it('keeps an entry small whatever the length of an id from the wire', async () => {
    const store = new MemoryIdempotencyStore(60_000, 10);
    const long = 'x'.repeat(1_000_000);
    await store.record('billing', long);
    expect(await store.seen('billing', long)).toBe(true);
    expect(await store.seen('billing', `${long}y`)).toBe(false);
    expect(await store.seen('audit', long)).toBe(false);
    const [key] = [...(store as unknown as { expiries: Map<string, number> }).expiries.keys()];
    expect(key!.length).toBeLessThan(64);
  });

  it('refuses a cap below one', () => {
    expect(() => new MemoryIdempotencyStore(1_000, 0)).toThrow('maxEntries must be an integer >= 1, got 0');
  });
});

describe('DurableDelivery bounds every handler', () => {
  const retry = new RetryPolicy({ attempts: 3, initialDelayMs: 10, maxDelayMs: 10, handlerTimeoutMs: 200 }, () => 1);
  const never = () => new Promise<never>(() => undefined);
  const quiet = { warn: () => undefined };

  /** A message as a broker would see it: what the delivery did with it, in order. */
  function message(deliveryCount = 1) {
    const outcomes: string[] = [];
    const m: DurableMessage = {
      eventId: 'e1',
      deliveryCount,
      ack: () => void outcomes.push('ack'),
      retryLater: (delayMs) => void outcomes.push(`retry ${delayMs}`),
      deadLetter: async (attempts, error) => void outcomes.push(`dead ${attempts} ${error.name}`),
      keepAlive: () => void outcomes.push('alive'),
    };
    return { m, outcomes };
  }

  it('fails an attempt that runs past its timeout, retries it, and dead-letters it after the last attempt', async () => {
    const delivery = new DurableDelivery(retry, undefined, 60_000, () => 'unacked', quiet);
    const first = message(1);
    await delivery.deliver(first.m, 'g', { attempts: 3, start: 'new', ordered: false }, never);
    expect(first.outcomes).toEqual(['retry 10']);
    const last = message(3);
    await delivery.deliver(last.m, 'g', { attempts: 3, start: 'new', ordered: false, timeoutMs: 100 }, never);
    expect(last.outcomes).toEqual(['dead 3 HandlerTimeoutError']);
    expect(delivery.status()).toMatchObject({ inFlight: 0, timedOut: 2 });
    expect(delivery.status().slow.map((h) => [h.consumer, h.abandoned])).toEqual([['g', true], ['g', true]]);
    expect(new HandlerTimeoutError('x').name).toBe('HandlerTimeoutError');
  });

  it('keeps an ordered delivery alive while it waits to retry in place', async () => {
    const delivery = new DurableDelivery(new RetryPolicy({ attempts: 2, initialDelayMs: 400, maxDelayMs: 400 }, () => 1), undefined, 100, () => 'unacked', quiet);
    const { m, outcomes } = message(1);
    let runs = 0;
    await delivery.deliver(m, 'g', { attempts: 2, start: 'new', ordered: true }, () => (runs++ === 0 ? Promise.reject(new Error('once')) : undefined));
    expect(outcomes.filter((o) => o === 'alive').length).toBeGreaterThan(0);
    expect(outcomes.at(-1)).toBe('ack');
  });

  it('hands back at stop what still runs, and delivers nothing more', async () => {
    const delivery = new DurableDelivery(retry, undefined, 60_000, () => 'unacked', quiet);
    const hung = message(1);
    const delivering = delivery.deliver(hung.m, 'g', { attempts: 3, start: 'new', ordered: false, timeoutMs: 60_000 }, never);
    expect(await delivery.stop(50)).toBe(1);
    await delivering;
    expect(hung.outcomes).toEqual(['retry 0']);
    const late = message(1);
    await delivery.deliver(late.m, 'g', { attempts: 3, start: 'new', ordered: false }, () => undefined);
    expect(late.outcomes).toEqual(['retry 0']);
  });
});
