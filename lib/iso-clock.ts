let lastMs = -1;
let lastIso = '';

/** The current time as an ISO-8601 string, formatted at most once per millisecond (a hot path). */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
