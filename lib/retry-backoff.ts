import type { ResolvedRetryOptions } from './resolve-options.js';

/**
 * Delay before the delivery after failed `attempt` (from 1): exponential from the initial delay,
 * capped, with "equal jitter" (half fixed, half random) so that failing consumers spread out
 * without ever retrying at once.
 */
export function retryDelayMs(attempt: number, retry: ResolvedRetryOptions, random: () => number = Math.random): number {
  const exponential = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (exponential / 2) * random());
}
