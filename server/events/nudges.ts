// The "events were committed" signal between instances: Redis pub/sub when REDIS_URL is set,
// in-process otherwise. It carries no data: readers take the events themselves from the durable
// log, so a lost nudge delays delivery, never loses it.
//
// Redis is an accelerator, never a dependency. Every error of either client is handled here; a
// publish that fails is dropped (and logged, at most every 30 s); while the subscription is not
// confirmed (starting, Redis down, reconnecting) `live()` is false and the pump reads the log on
// a short timer instead. On every (re)connection the channel is subscribed again, and it counts as
// live only once Redis has confirmed the SUBSCRIBE.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../core/logger.js';
import type { Nudges } from './pump.js';

const TOPIC = 'mpk:lease-events';
/** One line per this long at most for repeated Redis errors; state changes are always logged. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/** `local`: no Redis configured. `subscribing`: connected or connecting, SUBSCRIBE not confirmed. */
export type NudgeState = 'local' | 'subscribing' | 'ok' | 'down';

export interface NudgeChannel extends Nudges {
  state(): NudgeState;
  close(): Promise<void>;
}

/** Logs the first error at once and then at most one line (with a count) per interval. */
function throttledWarning(logger: Logger | undefined, message: string) {
  let last = 0;
  let suppressed = 0;
  return (error: unknown) => {
    const now = Date.now();
    if (now - last < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    logger?.warn({ err: error, suppressed }, message);
    last = now;
    suppressed = 0;
  };
}

export function createNudges(options: { redisUrl?: string; logger?: Logger } = {}): NudgeChannel {
  const { redisUrl, logger } = options;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  const local = {
    subscribe(onNudge: () => void) {
      listeners.add(onNudge);
      return () => void listeners.delete(onNudge);
    },
  };
  if (!redisUrl) {
    return {
      ...local,
      publish: notify,
      live: () => true,
      ready: async () => true,
      state: () => 'local',
      async close() {
        listeners.clear();
      },
    };
  }

  // Our own messages come back to us: this instance was already told, directly.
  const self = randomUUID();
  const common = {
    // Nothing waits on Redis: a command is sent on a live connection or fails at once, and one
    // caught by a disconnect fails rather than being retried for seconds.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // Reconnect forever, at most a second apart, so that a Redis that is back is used again soon.
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
  };
  const publisher = new Redis(redisUrl, common);
  // Resubscribing is done below, on every 'ready', so that its confirmation is seen.
  const subscriber = new Redis(redisUrl, { ...common, autoResubscribe: false });
  publisher.on('error', throttledWarning(logger, 'Redis (publish connection) error'));
  subscriber.on('error', throttledWarning(logger, 'Redis (subscribe connection) error'));
  const publishFailed = throttledWarning(logger, 'could not publish a nudge to Redis; other instances will poll');

  let state: NudgeState = 'subscribing';
  let everLive = false;
  let closed = false;
  /** Bumped on every connection change, so that a late SUBSCRIBE reply of an old one is ignored. */
  let generation = 0;
  const waiters = new Set<() => void>();

  subscriber.on('message', (channel: string, message: string) => {
    if (channel === TOPIC && message !== self) notify();
  });
  subscriber.on('ready', () => {
    const mine = ++generation;
    state = 'subscribing';
    subscriber.subscribe(TOPIC).then(
      () => {
        if (mine !== generation || closed) return;
        state = 'ok';
        logger?.info(everLive ? 'Redis is back: subscribed again' : 'subscribed to Redis for cross-instance events');
        everLive = true;
        for (const resolve of waiters) resolve();
        waiters.clear();
        // Whatever was committed while the channel was not confirmed is read now.
        notify();
      },
      (error: unknown) => {
        if (mine !== generation || closed) return;
        // Start again on a fresh connection: it will be 'ready' again and subscribe.
        logger?.warn({ err: error }, 'Redis SUBSCRIBE failed; reconnecting');
        subscriber.disconnect(true);
      },
    );
  });
  subscriber.on('close', () => {
    generation++;
    if (closed || state === 'down') return;
    if (state === 'ok' || everLive)
      logger?.warn('lost the Redis subscription: reading the event log on a short timer until it is back');
    state = 'down';
  });

  return {
    ...local,
    publish() {
      notify();
      if (publisher.status !== 'ready') return;
      publisher.publish(TOPIC, self).catch(publishFailed);
    },
    live: () => state === 'ok',
    /** Resolves true once the channel is live, false if `timeoutMs` passes first. */
    ready(timeoutMs: number) {
      if (state === 'ok') return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve(false);
        }, timeoutMs);
        waiters.add(done);
      });
    },
    state: () => state,
    async close() {
      closed = true;
      listeners.clear();
      for (const resolve of waiters) resolve();
      waiters.clear();
      // quit() needs a live connection; without one, drop the client (it stops reconnecting).
      await Promise.all(
        [publisher, subscriber].map((client) =>
          client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect(),
        ),
      );
    },
  };
}
