import { tokenProblem } from './subject-token.js';

/**
 * NATS subject matching, token by token: `*` matches exactly one token, `>` (last only)
 * one or more. The memory transport routes with this, so it must agree with nats-server.
 */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  const n = subject.length;
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === '>') return n > i;
    if (i >= n) return false;
    if (token !== '*' && token !== subject[i]) return false;
  }
  return pattern.length === n;
}

/** Whether a subscription subject has a wildcard: without one, every message it receives came on that very subject. */
export const hasWildcard = (pattern: string): boolean => pattern.split('.').some((token) => token === '*' || token === '>');

/** Returns why `pattern` is not a valid NATS subscription subject, or undefined when it is. */
export function patternProblem(pattern: string): string | undefined {
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === '*') continue;
    if (token === '>') {
      if (i !== tokens.length - 1) return '">" may only be the last token';
      continue;
    }
    const problem = tokenProblem(token);
    if (problem) return `token ${JSON.stringify(token)} ${problem}`;
  }
  return undefined;
}

/** Returns why `subject` is not a valid subject to publish to (no wildcards), or undefined. */
export function subjectProblem(subject: string): string | undefined {
  for (const token of subject.split('.')) {
    const problem = tokenProblem(token);
    if (problem) return `token ${JSON.stringify(token)} ${problem}`;
  }
  return undefined;
}
