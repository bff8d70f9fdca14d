/** How much of a value from the wire a log line or an error message shows. */
export const MAX_PRINTED_LENGTH = 200;

// C0 and C1 controls, DEL, and the characters that reorder or break lines in a terminal or a log viewer.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(char: string): string {
  const code = char.charCodeAt(0);
  return NAMED[char] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * A value that came from the wire, fit for a log line or an error message: control characters
 * escaped (`\n`, `\x1b`), so that it cannot forge a line or colour a terminal, and cut to `max`
 * characters with an ellipsis, so that a megabyte of id makes no megabyte of log.
 */
export function printable(value: unknown, max = MAX_PRINTED_LENGTH): string {
  let text = typeof value === 'string' ? value : String(value);
  if (text.length > max) {
    const end = (text.charCodeAt(max - 1) & 0xfc00) === 0xd800 ? max - 1 : max; // never half a surrogate pair
    text = `${text.slice(0, end)}…`;
  }
  return text.replace(UNPRINTABLE, escape);
}

/** A wire value in double quotes, printable. */
export const quoted = (value: unknown, max = MAX_PRINTED_LENGTH): string => `"${printable(value, max)}"`;
