import { BoundedCache } from '../../bounded-cache.js';
import { subjectMatches } from '../../routing/subject-pattern.js';
import type { MessageHeaders, TransportMessageHandler, TransportPayload } from '../event-transport.js';

interface MemorySubscription {
  readonly pattern: readonly string[];
  readonly queue: string | undefined;
  readonly owner: object;
  readonly handler: TransportMessageHandler;
  active: boolean;
}

interface Route {
  readonly broadcast: MemorySubscription[];
  readonly groups: MemorySubscription[][];
}

/** Routes kept, by subject: subjects carry keys, which the application may take from its users. */
const MAX_CACHED_SUBJECTS = 10_000;
const MAX_CACHED_BYTES = 4 * 1024 * 1024;
/** Per delivery queued: the subscription, subject, payload and headers. */
const QUEUED = 4;
const ignore = () => undefined;

/**
 * An in-process NATS: the transports of every application instance in one process meet here.
 * Delivery is asynchronous, in publish order and unbounded (nothing is dropped); a queue group
 * gets each message once, round-robin among its members. A publisher's own broadcast
 * subscriptions are skipped, as the bus would discard its own echo anyway.
 */
export class MemoryBroker {
  private subscriptions: MemorySubscription[] = [];
  private readonly routes = new BoundedCache<string, Route>(MAX_CACHED_SUBJECTS, MAX_CACHED_BYTES);
  private readonly pending: Array<MemorySubscription | string | TransportPayload | MessageHeaders | undefined> = [];
  private scheduled = false;
  private nextMember = 0;
  private idleWaiters: Array<() => void> = [];

  subscribe(subject: string, queue: string | undefined, owner: object, handler: TransportMessageHandler): () => void {
    const subscription: MemorySubscription = { pattern: subject.split('.'), queue, owner, handler, active: true };
    this.subscriptions.push(subscription);
    this.routes.clear();
    return () => {
      subscription.active = false;
      this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
      this.routes.clear();
    };
  }

  publish(subject: string, payload: TransportPayload, headers: MessageHeaders | undefined, publisher: object): void {
    const route = this.route(subject);
    for (const subscription of route.broadcast) {
      if (subscription.owner !== publisher) this.pending.push(subscription, subject, payload, headers);
    }
    for (const members of route.groups) {
      this.pending.push(members[this.nextMember++ % members.length], subject, payload, headers);
    }
    if (!this.scheduled && this.pending.length > 0) {
      this.scheduled = true;
      setImmediate(this.deliver);
    }
  }

  /**
   * Takes an owner's subscriptions out of routing at once; what was routed to them already is still
   * delivered (a queue group's message is never dropped). Resolves once it has been.
   */
  async detach(owner: object): Promise<void> {
    const detached = this.subscriptions.filter((s) => s.owner === owner);
    this.subscriptions = this.subscriptions.filter((s) => s.owner !== owner);
    this.routes.clear();
    await this.idle();
    for (const subscription of detached) subscription.active = false;
  }

  /** Resolves once every message published so far has been delivered (later ones may still be pending). */
  idle(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private readonly deliver = (): void => {
    // Everything pending now is in this batch: its waiters are done when it is, whatever comes after.
    const batch = this.pending.splice(0, this.pending.length);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (let i = 0; i < batch.length; i += QUEUED) {
      const subscription = batch[i] as MemorySubscription;
      if (!subscription.active) continue;
      // Handlers report their own failures; one must not stop delivery to the others.
      subscription.handler(batch[i + 1] as string, batch[i + 2] as TransportPayload, 1, batch[i + 3] as MessageHeaders | undefined)?.catch(ignore);
    }
    if (this.pending.length > 0) setImmediate(this.deliver);
    else this.scheduled = false;
    for (const resolve of waiters) resolve();
  };

  private route(subject: string): Route {
    let route = this.routes.get(subject);
    if (route) return route;
    const tokens = subject.split('.');
    const broadcast: MemorySubscription[] = [];
    const groups = new Map<string, MemorySubscription[]>();
    let matched = 0;
    for (const subscription of this.subscriptions) {
      if (!subjectMatches(subscription.pattern, tokens)) continue;
      matched++;
      if (subscription.queue === undefined) broadcast.push(subscription);
      else {
        const members = groups.get(subscription.queue);
        if (members) members.push(subscription);
        else groups.set(subscription.queue, [subscription]);
      }
    }
    route = { broadcast, groups: [...groups.values()] };
    return this.routes.set(subject, route, 2 * subject.length + 8 * matched + 64);
  }
}

/** The broker of application instances that name none. */
export const defaultMemoryBroker: MemoryBroker = ((globalThis as Record<symbol, MemoryBroker>)[Symbol.for('nestjs-domain-events.defaultMemoryBroker')] ??= new MemoryBroker());
