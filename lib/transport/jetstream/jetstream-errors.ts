import { errors, RequestError } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** No stream acknowledged a publish in time (a leader killed mid-request, or an ack lost in a reconnect). */
export class PubAckTimeoutError extends Error {
  override readonly name = 'PubAckTimeoutError';
}

/** No server took a publish (no responders): no stream captures its subject, or the stream has no leader now. */
export class NoStreamAnsweredError extends Error {
  override readonly name = 'NoStreamAnsweredError';
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1_000;

/**
 * Whether a failed JetStream request may succeed if sent again: no leader answered (an election, a node
 * lost, this client reconnecting; the client reports it as "jetstream is not enabled", caused by "no
 * responders"), or no answer came in time. A real "not enabled" from the server (10039), a closed
 * connection and other API errors are final.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof errors.TimeoutError || error instanceof PubAckTimeoutError || error instanceof NoStreamAnsweredError) return true;
  if (error instanceof Error && error.name === 'JetStreamNotEnabled') return error.cause instanceof RequestError && error.cause.isNoResponders();
  return error instanceof JetStreamApiError && error.status === 503 && error.code !== JetStreamApiCodes.JetStreamNotEnabledForAccount;
}

/** A transient failure in words an operator reads in a log. */
export function transientReason(error: Error): string {
  if (error instanceof errors.TimeoutError || error instanceof PubAckTimeoutError) return 'no answer in time';
  if (error instanceof NoStreamAnsweredError || (error.cause instanceof RequestError && error.cause.isNoResponders())) return 'no responders';
  return error.message;
}

/** Backoff before attempt n + 1: doubling from 100 ms to 1 s, with 50-100 % jitter so that clients spread out. */
export const backoffMs = (n: number): number => Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** n) * (0.5 + Math.random() / 2);

/** Runs a JetStream request (or a few) again while it fails transiently, until the deadline; then its last error. */
export async function retryTransient<T>(deadlineMs: number, request: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (let n = 0; ; n++) {
    try {
      return await request();
    } catch (error) {
      const delay = backoffMs(n);
      if (!isTransient(error) || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
