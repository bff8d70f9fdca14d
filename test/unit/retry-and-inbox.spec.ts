import { jest } from '@jest/globals';
import { DecodeError } from '../../lib/codec/codec-errors.js';
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
