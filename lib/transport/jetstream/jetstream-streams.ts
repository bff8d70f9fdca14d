import { nanos } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { isTransient } from './jetstream-errors.js';
import type { ResolvedJetStreamOptions } from './jetstream-options.js';

export class StreamConflictError extends Error {
  override readonly name = 'StreamConflictError';
}

/** Subjects of dead letters and replays: `dlq.<prefix>.dead.<scope>` and `dlq.<prefix>.replay.<scope>`, outside `<prefix>.>`. */
export function deadLetterPrefix(subjectPrefix: string): string {
  return `dlq.${subjectPrefix}`;
}

export function deadLetterStream(options: ResolvedJetStreamOptions): string {
  return `${options.stream}_DLQ`;
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/** The stream's configuration, or undefined when there is no such stream. */
async function existingConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Creates the stream. Instances starting together race to: the server refuses all but one (subjects
 * overlap, or the name is taken with other limits), and the losers go on with the stream the winner
 * made, which is returned. A failure that may pass is thrown as it is, to be retried.
 */
async function create(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<StreamConfig | undefined> {
  try {
    await jsm.streams.add(config);
    return undefined;
  } catch (error) {
    if (isTransient(error)) throw error;
    const created = await existingConfig(jsm, config.name);
    if (created) return created;
    throw new StreamConflictError(`cannot create stream ${config.name} for ${config.subjects.join(', ')}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Creates the stream, or brings its limits to the configured values. Refuses, naming what
 * differs, to change what would lose or reroute other users' data: storage, retention, subjects.
 */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
  const existing = (await existingConfig(jsm, config.name)) ?? (await create(jsm, config));
  if (!existing) return;
  const conflicts: string[] = [];
  if (existing.storage !== config.storage) conflicts.push(`storage is ${existing.storage}, configured ${config.storage}`);
  if (existing.retention !== config.retention) conflicts.push(`retention is ${existing.retention}, expected ${config.retention}`);
  const missing = config.subjects.filter((s) => !existing.subjects?.includes(s));
  if (missing.length > 0) conflicts.push(`subjects are ${JSON.stringify(existing.subjects)}, expected to include ${JSON.stringify(missing)}`);
  if (conflicts.length > 0) {
    throw new StreamConflictError(`stream ${config.name} exists and differs in ways this module will not change: ${conflicts.join('; ')}`);
  }
  const { name, storage, retention, subjects, ...limits } = config;
  const changed = Object.entries(limits).some(([key, value]) => (existing as unknown as Record<string, unknown>)[key] !== value);
  if (changed) await jsm.streams.update(name, { ...existing, ...limits });
}

/** @internal The event stream (`<prefix>.>`) and its dead-letter stream, created or updated idempotently. */
export async function ensureEventStreams(jsm: JetStreamManager, subjectPrefix: string, options: ResolvedJetStreamOptions): Promise<void> {
  const storage = options.storage === 'memory' ? StorageType.Memory : StorageType.File;
  await ensureStream(jsm, {
    name: options.stream,
    subjects: [`${subjectPrefix}.>`],
    storage,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: options.replicas,
    max_age: nanos(options.maxAgeMs),
    max_msgs: options.maxMessages,
    max_bytes: options.maxBytes,
    duplicate_window: nanos(options.duplicateWindowMs),
  });
  await ensureStream(jsm, {
    name: deadLetterStream(options),
    subjects: [`${deadLetterPrefix(subjectPrefix)}.>`],
    storage,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: options.replicas,
    duplicate_window: nanos(options.duplicateWindowMs),
  });
}

