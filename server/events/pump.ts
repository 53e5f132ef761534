// One tail of the event log per server instance. Woken by a nudge after every commit (from this
// instance, or from the others through the pub/sub), it reads the log past its position and hands
// each batch, in cursor order, to the local listeners: subscriptions, the scheduler, usage feeds.
// A slow poll covers lost nudges, a fast one stands in for them while the channel is not live
// (Redis down or not yet subscribed); a quick retry covers events held back behind an older
// transaction still running.
import type { Db } from '../db/client.js';
import { type EventCursor, headCursor, type LoggedEvent, readEvents } from './log.js';

export type PumpListener = (events: readonly LoggedEvent[]) => void;

export interface Nudges {
  publish(): void;
  subscribe(onNudge: () => void): () => void;
  /** Nudges from every instance reach this one now (confirmed): the slow poll is enough. */
  live(): boolean;
  /** Resolves true once live, false when `timeoutMs` passed first. */
  ready(timeoutMs: number): Promise<boolean>;
}

const PAGE = 1000;
const HELD_BACK_RETRY_MS = 10;

export interface EventPumpOptions {
  db: Db;
  nudges: Nudges;
  /** Reads of the log when nothing woke the pump, while nudges are live (a lost one's worst delay). */
  pollMs?: number;
  /** Reads of the log while nudges are not live: how late a change made elsewhere can be seen. */
  fallbackPollMs?: number;
  /** How long `start` waits for the nudge channel before serving on the fallback poll. */
  startWaitMs?: number;
  onError?: (error: unknown) => void;
  /** Told once, at start, when the nudge channel was not live in time. */
  onDegradedStart?: () => void;
}

export function createEventPump(deps: EventPumpOptions) {
  const { db, nudges, pollMs = 500, fallbackPollMs = 250, startWaitMs = 2000 } = deps;
  const listeners = new Set<PumpListener>();
  let position: EventCursor | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let lastRead = 0;

  async function drain() {
    lastRead = Date.now();
    for (;;) {
      const page = await readEvents(db, position!, PAGE);
      if (page.events.length) {
        position = page.events.at(-1)!;
        for (const listener of listeners) {
          try {
            listener(page.events);
          } catch (error) {
            deps.onError?.(error);
          }
        }
      }
      if (page.heldBack && !retry && !stopped) {
        retry = setTimeout(() => {
          retry = undefined;
          wake();
        }, HELD_BACK_RETRY_MS);
      }
      if (page.events.length < PAGE) return;
    }
  }

  function wake() {
    if (stopped || !position) return;
    if (reading) {
      again = true;
      return;
    }
    reading = (async () => {
      do {
        again = false;
        await drain().catch((error) => deps.onError?.(error));
      } while (again && !stopped);
      reading = undefined;
    })();
  }

  return {
    async start() {
      // Subscribed before the position is taken: nothing committed after it goes unannounced. If
      // the channel is not confirmed in time, the fast poll below stands in until it is.
      unsubscribe = nudges.subscribe(wake);
      if (!(await nudges.ready(startWaitMs))) deps.onDegradedStart?.();
      position = await headCursor(db);
      poll = setInterval(
        () => {
          if (!nudges.live() || Date.now() - lastRead >= pollMs) wake();
        },
        Math.min(pollMs, fallbackPollMs),
      );
      poll.unref();
    },
    /** Tells every instance (this one included) that events were committed. */
    nudge: () => nudges.publish(),
    wake,
    /** Where the pump has read to: a new live-only reader starts here. */
    position: () => position!,
    listen(listener: PumpListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** How many listeners are attached: each open subscription holds one, until it is released. */
    listenerCount: () => listeners.size,
    async stop() {
      stopped = true;
      unsubscribe?.();
      clearInterval(poll);
      clearTimeout(retry);
      await reading;
    },
  };
}
export type EventPump = ReturnType<typeof createEventPump>;
