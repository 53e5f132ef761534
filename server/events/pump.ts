// One tail of the event log per server instance. Woken by a nudge after every commit (from this
// instance, or from the others through the pub/sub), it reads the log past its position and hands
// each batch, in cursor order, to the local listeners: subscriptions, the scheduler, usage feeds.
// A slow poll covers lost nudges; a quick retry covers events held back behind an older
// transaction still running.
import type { Db } from '../db/client.js';
import { type EventCursor, headCursor, type LoggedEvent, readEvents } from './log.js';

export type PumpListener = (events: readonly LoggedEvent[]) => void;

export interface Nudges {
  publish(): void;
  subscribe(onNudge: () => void): () => void;
}

const PAGE = 1000;
const HELD_BACK_RETRY_MS = 10;

export function createEventPump(deps: { db: Db; nudges: Nudges; pollMs?: number; onError?: (error: unknown) => void }) {
  const { db, nudges } = deps;
  const listeners = new Set<PumpListener>();
  let position: EventCursor | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  async function drain() {
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
      position = await headCursor(db);
      unsubscribe = nudges.subscribe(wake);
      const pollMs = deps.pollMs ?? 500;
      poll = setInterval(wake, pollMs);
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
