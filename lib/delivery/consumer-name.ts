import { createHash } from 'node:crypto';

/** A durable consumer's name for a scope and subject: readable, and unique through a hash of the exact subject. */
export function consumerName(scope: string, subject: string): string {
  const readable = subject.replace(/\*/g, 'any').replace(/>/g, 'all').replace(/[^A-Za-z0-9_-]/g, '_').slice(-64);
  return `${scope}__${readable}_${createHash('sha256').update(subject).digest('hex').slice(0, 8)}`;
}
