import { DecodeError } from '../codec/codec-errors.js';
import { asInteger, integerAtLeast, integerSetting, pick, type Env } from '../config/settings.js';
import type { DeliveryOptions } from './delivery-options.js';

export interface RetryOptions {
  /** Deliveries of a failing event before it goes to the dead letters. */
  attempts?: number;
  /** Delay before the second delivery; doubled for each next one, with jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /**
   * How long one attempt of a handler may run before it counts as failed (retried, then dead-lettered);
   * per handler: `@OnDomainEvent(…, { timeoutMs })`. A handler cannot be cancelled: its promise is ignored when it settles.
   */
  handlerTimeoutMs?: number;
}

export interface ResolvedRetryOptions {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Absent: DEFAULT_HANDLER_TIMEOUT_MS. */
  readonly handlerTimeoutMs?: number;
}

/** How long an attempt may run by default: long for an event handler, yet a hung one cannot stall its consumer for good. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 60_000;

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
    handlerTimeoutMs: integerSetting(env, retry.handlerTimeoutMs, 'retry.handlerTimeoutMs', 'EVENT_BUS_HANDLER_TIMEOUT_MS', 1, DEFAULT_HANDLER_TIMEOUT_MS),
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

  /** How long one attempt of a subscription's handlers may run. */
  timeoutMs(delivery: DeliveryOptions): number {
    return delivery.timeoutMs ?? this.options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
  }

  /**
   * True for a delivery that arrives past its attempts: the earlier ones were never acknowledged
   * (a handler that crashed its process or hung), so it goes to the dead letters without running.
   */
  exhausted(deliveryCount: number, delivery: DeliveryOptions): boolean {
    return deliveryCount > delivery.attempts;
  }
}
