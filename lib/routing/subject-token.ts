/**
 * A wire name is one NATS subject token: it becomes `<prefix>.<name>[.<key>]`,
 * so it must not contain token separators, wildcards, whitespace or control characters.
 */
// eslint-disable-next-line no-control-regex
const INVALID_TOKEN = /[.*>\s\x00-\x1f\x7f]/;

/**
 * The longest wire name, group name or instance id: they are subject tokens, parts of JetStream
 * consumer names (file names on the server, at most 255 bytes) and of every envelope.
 */
export const MAX_NAME_LENGTH = 128;

/** Returns why `value` is not a valid subject token, or undefined when it is. */
export function tokenProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${typeof value}`;
  if (value.length === 0) return 'must not be empty';
  if (INVALID_TOKEN.test(value)) return 'must not contain ".", "*", ">", whitespace or control characters';
  return undefined;
}

/** Returns why `value` is not a valid name (a group, an instance id): a token of at most MAX_NAME_LENGTH characters. */
export function nameProblem(value: unknown): string | undefined {
  const problem = tokenProblem(value);
  if (problem) return problem;
  if ((value as string).length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters, got ${(value as string).length}`;
  return undefined;
}

/** Returns why `name` is not a valid wire name (a name that does not start with `$`). */
export function wireNameProblem(name: unknown): string | undefined {
  const problem = nameProblem(name);
  if (problem) return problem;
  if ((name as string).startsWith('$')) return 'must not start with "$" (reserved by NATS)';
  return undefined;
}
