/** Where a new durable subscription starts in the stream. */
export type StartPosition = 'new' | 'all' | Date;

/** How one subscription wants its events delivered; only durable transports act on these. */
export interface DeliveryOptions {
  /** Deliveries before a failing message goes to the dead letters. */
  readonly attempts: number;
  readonly start: StartPosition;
  /** One message at a time, in stream order (so each routing key in order). */
  readonly ordered: boolean;
  /** How long one attempt may run before it counts as failed; absent: the retry policy's handler timeout. */
  readonly timeoutMs?: number;
}

/** What a subscriber may ask for; unset fields take the module's defaults. */
export interface DeliveryRequest {
  readonly attempts?: number;
  readonly start?: StartPosition;
  readonly ordered?: boolean;
  readonly timeoutMs?: number;
}

/** The delivery options of a subscription, validated; `where` names the subscriber in the error. */
export function deliveryOptions(request: DeliveryRequest, defaultAttempts: number, where: string): DeliveryOptions {
  const attempts = request.attempts ?? defaultAttempts;
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`${where}: attempts must be an integer >= 1, got ${attempts}`);
  const start = request.start ?? 'new';
  if (start !== 'new' && start !== 'all' && !(start instanceof Date && !Number.isNaN(start.getTime()))) {
    throw new Error(`${where}: start must be 'new', 'all' or a valid Date`);
  }
  const { timeoutMs } = request;
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1)) throw new Error(`${where}: timeoutMs must be an integer >= 1, got ${timeoutMs}`);
  return { attempts, start, ordered: request.ordered ?? false, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
}

export function sameDelivery(a: DeliveryOptions, b: DeliveryOptions): boolean {
  const start = (s: StartPosition) => (s instanceof Date ? s.getTime() : s);
  return a.attempts === b.attempts && a.ordered === b.ordered && start(a.start) === start(b.start) && a.timeoutMs === b.timeoutMs;
}
