import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';

/**
 * Remembers which event ids a consumer scope (a group, or one instance) has handled, for a window:
 * a redelivery of a handled event (its ack lost, or the event re-published after the duplicate
 * window) is then acknowledged without running the handlers again.
 */
export interface IdempotencyStore {
  seen(scope: string, id: string): Promise<boolean>;
  record(scope: string, id: string): Promise<void>;
}

/** In-process: survives redeliveries to the same process only. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  // Insertion order is expiry order (one window for all), so pruning stops at the first live entry.
  private readonly expiries = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  async seen(scope: string, id: string): Promise<boolean> {
    const expiry = this.expiries.get(`${scope}\n${id}`);
    return expiry !== undefined && expiry > Date.now();
  }

  async record(scope: string, id: string): Promise<void> {
    const now = Date.now();
    for (const [key, expiry] of this.expiries) {
      if (expiry > now) break;
      this.expiries.delete(key);
    }
    const key = `${scope}\n${id}`;
    this.expiries.delete(key);
    this.expiries.set(key, now + this.windowMs);
  }
}

const KV_SAFE = /^[-_=A-Za-z0-9]+$/;
const kvToken = (value: string) => (KV_SAFE.test(value) ? value : `~${Buffer.from(value).toString('base64url')}`);

/** NATS KV: shared by every instance, so a group's redelivery to another member is caught too. */
export class KvIdempotencyStore implements IdempotencyStore {
  private constructor(private readonly kv: KV) {}

  /** @internal */
  static async open(connection: NatsConnection, bucket: string, windowMs: number, replicas: number): Promise<KvIdempotencyStore> {
    const kv = await new Kvm(connection).create(bucket, { ttl: windowMs, history: 1, replicas });
    return new KvIdempotencyStore(kv);
  }

  async seen(scope: string, id: string): Promise<boolean> {
    const entry = await this.kv.get(`${kvToken(scope)}.${kvToken(id)}`);
    return entry !== null && entry.operation === 'PUT';
  }

  async record(scope: string, id: string): Promise<void> {
    await this.kv.put(`${kvToken(scope)}.${kvToken(id)}`, '');
  }
}
