import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { IdempotencyStore } from '../../delivery/idempotency-store.js';

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
