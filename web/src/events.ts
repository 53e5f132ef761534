// The lease events heard live in this session, newest first (the last 200), for the event feeds.
// The global subscription in the layout writes here; the cache gets the leases themselves.
// Feeds are told at most every NOTIFY_MS: at twenty events a second, a render per event would
// keep React busy enough to starve a page change. Watchers (refresh triggers) hear each event.
import { useSyncExternalStore } from 'react';
import type { EventItemFragment } from './gql/graphql';

const KEEP = 200;
const NOTIFY_MS = 250;
let heard: readonly EventItemFragment[] = [];
let published: readonly EventItemFragment[] = heard;
let pending: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<() => void>();
const watchers = new Set<(event: EventItemFragment) => void>();

function publish() {
  pending = undefined;
  published = heard;
  for (const listener of listeners) listener();
}

export const liveEvents = {
  push(event: EventItemFragment) {
    heard = [event, ...heard].slice(0, KEEP);
    pending ??= setTimeout(publish, NOTIFY_MS);
    for (const watch of watchers) watch(event);
  },
  /** Calls `watch` with each event from now on, without rendering anything. */
  watch(watch: (event: EventItemFragment) => void): () => void {
    watchers.add(watch);
    return () => watchers.delete(watch);
  },
  clear() {
    clearTimeout(pending);
    heard = [];
    publish();
  },
};

export function useLiveEvents(): readonly EventItemFragment[] {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => published,
  );
}
