import { jest } from '@jest/globals';
import { MemoryIdempotencyStore } from '../../lib/idempotency-store.js';
import { retryDelayMs } from '../../lib/retry-backoff.js';

describe('retryDelayMs', () => {
  const retry = { attempts: 10, initialDelayMs: 200, maxDelayMs: 5_000 };

  it('doubles from the initial delay up to the cap, with jitter in the upper half', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => retryDelayMs(attempt, retry, () => 1))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
    expect([1, 2, 3].map((attempt) => retryDelayMs(attempt, retry, () => 0))).toEqual([100, 200, 400]);
    for (let i = 0; i < 100; i++) {
      const delay = retryDelayMs(3, retry);
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
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
