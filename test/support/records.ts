import type { HandlerRecord } from './instance-protocol.js';

/** `prefix-0` … `prefix-(n-1)`: the suites tell their events apart by id prefix. */
export const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** What one handler recorded for events whose id starts with `prefix-`, in recording order. */
export const recordsOf = (records: HandlerRecord[], handler: string, prefix: string): HandlerRecord[] =>
  records.filter((r) => r.handler === handler && r.eventId.startsWith(`${prefix}-`));

export const idsOf = (records: HandlerRecord[], handler: string, prefix: string): string[] =>
  recordsOf(records, handler, prefix).map((r) => r.eventId);

export const sorted = (list: readonly string[]): string[] => [...list].sort();
