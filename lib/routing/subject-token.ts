/**
 * A wire name is one NATS subject token: it becomes `<prefix>.<name>[.<key>]`,
 * so it must not contain token separators, wildcards, whitespace or control characters.
 */
// eslint-disable-next-line no-control-regex
const INVALID_TOKEN = /[.*>\s\x00-\x1f\x7f]/;

/** Returns why `value` is not a valid subject token, or undefined when it is. */
export function tokenProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${typeof value}`;
  if (value.length === 0) return 'must not be empty';
  if (INVALID_TOKEN.test(value)) return 'must not contain ".", "*", ">", whitespace or control characters';
  return undefined;
}

/** Returns why `name` is not a valid wire name (a token that does not start with `$`). */
export function wireNameProblem(name: unknown): string | undefined {
  const problem = tokenProblem(name);
  if (problem) return problem;
  if ((name as string).startsWith('$')) return 'must not start with "$" (reserved by NATS)';
  return undefined;
}
