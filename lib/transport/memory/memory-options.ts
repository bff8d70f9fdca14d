import { asBoolean, pick, type Env } from '../../config/settings.js';
import type { MemoryBroker } from './memory-broker.js';

export interface MemoryOptions {
  /**
   * Run every event through the wire codec, as NATS does, so that events that would not
   * survive the wire fail in development too. Off by default for speed.
   */
  codec?: boolean;
  /** The in-process broker instances share; one per process by default. */
  broker?: MemoryBroker;
}

export interface ResolvedMemoryOptions {
  readonly codec: boolean;
  readonly broker: MemoryBroker | undefined;
}

export function resolveMemoryOptions(memory: MemoryOptions = {}, env: Env = process.env): ResolvedMemoryOptions {
  return {
    codec: pick(memory.codec, 'memory.codec', env, 'EVENT_BUS_MEMORY_CODEC', asBoolean).value ?? false,
    broker: memory.broker,
  };
}
