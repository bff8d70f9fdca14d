import type { IdempotencyStore } from '../../delivery/idempotency-store.js';
import type { RedisClient } from './redis-client.js';
import type { RedisKeys } from './redis-keys.js';

/** Handled ids as keys that expire after the window: shared by every instance, so a group's redelivery to another member is caught too. */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly window: string;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    windowMs: number,
  ) {
    this.window = String(windowMs);
  }

  async seen(scope: string, id: string): Promise<boolean> {
    return (await this.client.sendCommand(['EXISTS', this.keys.handled(scope, id)])) === 1;
  }

  async record(scope: string, id: string): Promise<void> {
    await this.client.sendCommand(['SET', this.keys.handled(scope, id), '1', 'PX', this.window]);
  }
}
