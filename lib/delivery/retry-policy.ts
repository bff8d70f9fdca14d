import { DecodeError } from '../codec/codec-errors.js';
import { asInteger, integerAtLeast, integerSetting, pick, type Env } from '../config/settings.js';
import type { DeliveryOptions } from './delivery-options.js';

export interface RetryOptions {
  /** Deliveries of a failing event before it goes to the dead letters. */
  attempts?: number;
  /** Delay before the second delivery; doubled for each next one, with jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface ResolvedRetryOptions {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** What to do with a delivery whose handlers failed. */
export type RetryDecision =
  | { readonly action: 'retry'; readonly delayMs: number }
  | { readonly action: 'dead-letter' };

const DEAD_LETTER: RetryDecision = { action: 'dead-letter' };

export function resolveRetryOptions(retry: RetryOptions = {}, env: Env = process.env): ResolvedRetryOptions {
  const initialDelayMs = integerSetting(env, retry.initialDelayMs, 'retry.initialDelayMs', 'EVENT_BUS_RETRY_INITIAL_DELAY_MS', 0, 200);
  const maxDelay = pick(retry.maxDelayMs, 'retry.maxDelayMs', env, 'EVENT_BUS_RETRY_MAX_DELAY_MS', asInteger);
  const maxDelayMs = integerAtLeast(maxDelay, 0, 30_000);
  if (maxDelayMs < initialDelayMs) maxDelay.fail(`must not be below the initial delay (${initialDelayMs} ms)`);
  return {
    attempts: integerSetting(env, retry.attempts, 'retry.attempts', 'EVENT_BUS_RETRY_ATTEMPTS', 1, 5),
    initialDelayMs,
    maxDelayMs,
  };
}

/**
 * The one retry policy of every durable transport: how many deliveries a failing event gets,
 * how long to wait before each next one, and when it goes to the dead letters instead.
 */
export class RetryPolicy {
  constructor(
    readonly options: ResolvedRetryOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Delay before the delivery after failed `attempt` (from 1): exponential from the initial delay,
   * capped, with "equal jitter" (half fixed, half random) so that failing consumers spread out
   * without ever retrying at once.
   */
  delayMs(attempt: number): number {
    const { initialDelayMs, maxDelayMs } = this.options;
    const exponential = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(exponential / 2 + (exponential / 2) * this.random());
  }

  /** After delivery `attempt` failed: retry later, or dead-letter (the last attempt, or a message that can never be decoded). */
  afterFailure(attempt: number, error: unknown, delivery: DeliveryOptions): RetryDecision {
    if (error instanceof DecodeError || attempt >= delivery.attempts) return DEAD_LETTER;
    return { action: 'retry', delayMs: this.delayMs(attempt) };
  }

  /**
   * True for a delivery that arrives past its attempts: the earlier ones were never acknowledged
   * (a handler that crashed its process or hung), so it goes to the dead letters without running.
   */
  exhausted(deliveryCount: number, delivery: DeliveryOptions): boolean {
    return deliveryCount > delivery.attempts;
  }
}
