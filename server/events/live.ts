// Lease event streams for subscribers: replay from a cursor out of the durable log, then live
// from this instance's pump, with no gap and no duplicate across the switch. A stream lets go of
// everything at once when it is cancelled (see stream.ts), and a USER holds a bounded number.

import { authorize } from '../auth/permissions.js';
import { badInput, MpkError } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid } from '../core/ids.js';
import type { Db } from '../db/client.js';
import { LEASE_EVENT_TYPES, type LeaseEventType } from '../db/enums.js';
import { createSubscriberLimits, type SubscriberLimits } from './limits.js';
import {
  assertCursorKept,
  compareCursors,
  decodeEventCursor,
  type EventCursor,
  type EventFilter,
  type LoggedEvent,
  readEvents,
  readLeaseHistories,
  readRecentEvents,
} from './log.js';
import type { EventPump } from './pump.js';
import { releasableStream } from './stream.js';

export interface LeaseEventFilter {
  after?: string | null;
  keyId?: string | null;
  userId?: string | null;
  types?: readonly LeaseEventType[] | null;
}

/** A subscriber this far behind the live stream is cut off rather than left to eat memory. */
const MAX_BACKLOG = 10_000;
const REPLAY_PAGE = 500;
const MAX_HISTORY = 200;

/** Who may follow which events: a user hears only about their own leases, whatever filter they pass. */
function scope(
  actor: Identity | null,
  operation: 'leaseEvents' | 'recentLeaseEvents',
  filter: Omit<LeaseEventFilter, 'after'>,
) {
  const caller = authorize(actor, operation);
  if (caller.role === 'USER' && filter.userId && filter.userId !== caller.userId)
    throw badInput('userId', 'Users can only follow their own leases');
  const types = filter.types?.length ? new Set(filter.types) : null;
  if (types)
    for (const t of types) if (!LEASE_EVENT_TYPES.includes(t)) throw badInput('types', `Unknown event type ${t}`);
  return {
    caller,
    userId: caller.role === 'USER' ? caller.userId : (filter.userId ?? null),
    keyId: filter.keyId ?? null,
    types,
  };
}

export function createLiveEvents(deps: { db: Db; pump: EventPump; limits?: SubscriberLimits }) {
  const { db, pump, limits = createSubscriberLimits() } = deps;

  return {
    /**
     * Authorizes and validates a subscription now, so refusals come back before any event: a cursor
     * past retention too (CURSOR_EXPIRED).
     */
    async leaseEvents(actor: Identity | null, filter: LeaseEventFilter): Promise<AsyncIterable<LoggedEvent>> {
      const { caller, userId, keyId, types } = scope(actor, 'leaseEvents', filter);
      const after = filter.after ? decodeEventCursor(filter.after) : null;
      if (after) await assertCursorKept(db, after);
      const matches = (e: LoggedEvent) =>
        (!userId || e.userId === userId) && (!keyId || e.keyId === keyId) && (!types || types.has(e.type));
      // The replay filters in SQL, on the index of the user or the key; the live tail, in memory.
      // A key id that is not a uuid matches nothing, and is not sent to be cast.
      const replay = keyId && !isUuid(keyId) ? null : { userId, keyId, types: types ? [...types] : null };
      return stream(caller, after, matches, replay);
    },

    /** The newest events, newest first, under the same rules as the live stream (a feed's start). */
    async recent(
      actor: Identity | null,
      filter: Omit<LeaseEventFilter, 'after'> & { first?: number | null },
    ): Promise<LoggedEvent[]> {
      const { userId, keyId, types } = scope(actor, 'recentLeaseEvents', filter);
      const limit = filter.first ?? 20;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY)
        throw badInput('first', `first must be between 1 and ${MAX_HISTORY}`);
      if (keyId && !isUuid(keyId)) return [];
      return readRecentEvents(db, { limit, userId, keyId, types: types ? [...types] : null });
    },

    /**
     * The newest events of each lease, for leases the caller was already allowed to see (ids of
     * rows read from the database): one query for a whole page of leases.
     */
    async histories(
      leaseIds: readonly string[],
      options: { first?: number | null; types?: readonly LeaseEventType[] | null },
    ) {
      const limit = options.first ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY)
        throw badInput('first', `first must be between 1 and ${MAX_HISTORY}`);
      const found = await readLeaseHistories(db, leaseIds, {
        limit,
        types: options.types?.length ? options.types : null,
      });
      return leaseIds.map((id) => found.get(id) ?? []);
    },
  };

  function stream(
    caller: Identity,
    after: EventCursor | null,
    matches: (e: LoggedEvent) => boolean,
    replay: EventFilter | null,
  ): AsyncIterableIterator<LoggedEvent> {
    // Refused before anything is read or listened to; released however the stream ends.
    const release = limits.subscription(caller);
    return releasableStream(async function* ({ signal, wait, wake }) {
      const backlog: LoggedEvent[] = [];
      let overflow = false;
      // Listen before replaying: whatever the pump delivers from now on is kept, and the replay
      // below reaches at least as far as the pump had read, so the two overlap and never gap.
      const unlisten = pump.listen((events) => {
        let matched = false;
        for (const e of events)
          if (matches(e)) {
            backlog.push(e);
            matched = true;
          }
        if (backlog.length > MAX_BACKLOG) overflow = true;
        if (matched) wake();
      });
      let cursor = after ?? pump.position();
      try {
        if (after && replay) {
          while (!signal.aborted) {
            const page = await readEvents(db, cursor, REPLAY_PAGE, replay);
            // Retention may have dropped events past the cursor while this page was read: if the
            // horizon has passed it, the page may lack some, and the subscriber must resync.
            await assertCursorKept(db, cursor);
            for (const e of page.events) {
              cursor = e;
              yield e;
            }
            if (page.events.length < REPLAY_PAGE) break;
          }
        }
        while (!signal.aborted) {
          if (overflow)
            throw new MpkError(
              'CONFLICT',
              'Subscriber fell too far behind the event stream; reconnect with the last cursor',
            );
          const e = backlog.shift();
          if (!e) {
            await wait();
            continue;
          }
          if (compareCursors(e, cursor) <= 0) continue;
          cursor = e;
          yield e;
        }
      } finally {
        unlisten();
      }
    }, release);
  }
}
export type LiveEvents = ReturnType<typeof createLiveEvents>;
