import { readFileSync } from 'node:fs';
import type { ResolvedRedisOptions } from './redis-options.js';

/** A reply as node-redis gives it for RESP2: strings (or Buffers on a reader), integers, arrays, null. */
export type Reply = string | Buffer | number | null | Reply[];

/**
 * What this transport uses of a node-redis client: raw commands, so that none of the package's
 * types reach the application's (the package is an optional peer, absent unless Redis is used).
 */
export interface RedisClient {
  sendCommand(args: readonly (string | Buffer)[]): Promise<any>;
  connect(): Promise<unknown>;
  destroy(): void;
  close(): Promise<void>;
  duplicate(): RedisClient;
  /** The same connection, but blob strings arrive as Buffers (message bodies stay bytes). */
  withTypeMapping(mapping: Record<number, unknown>): RedisClient;
  on(event: 'error' | 'ready' | 'end' | 'reconnecting', listener: (...args: any[]) => void): unknown;
  readonly isReady: boolean;
}

export class RedisClientMissingError extends Error {
  override readonly name = 'RedisClientMissingError';
}

interface RedisModule {
  createClient(options: object): RedisClient;
  RESP_TYPES: { BLOB_STRING: number };
}

/** Loads node-redis, the optional peer, only when this transport is used; says what to install when it is missing. */
export async function loadRedis(load: () => Promise<unknown> = () => import('redis')): Promise<RedisModule> {
  try {
    return (await load()) as RedisModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new RedisClientMissingError('EVENT_BUS_TRANSPORT=redis needs the Redis client package "redis" (node-redis, v5 or later): npm install redis', {
        cause: error,
      });
    }
    throw error;
  }
}

/** Reconnects forever, backing off from 50 ms to 2 s. */
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** retries, 2_000);

/**
 * A client for the settings, not yet connected. Commands have no client timeout (it doubles the
 * client's CPU per command, and a blocking read must not time out); publishes bound their own wait.
 */
export function createRedisClient(redis: RedisModule, options: ResolvedRedisOptions, name: string): RedisClient {
  const tls = options.tls;
  return redis.createClient({
    url: options.url,
    name,
    RESP: 2,
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: options.connectTimeoutMs,
      reconnectStrategy,
      ...(tls?.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls?.certFile ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile!) } : {}),
    },
  });
}
