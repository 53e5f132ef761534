// Whether the live stream (graphql-ws) is up, and when the last event arrived: the header's
// connection indicator reads this, the client writes it.
import { useSyncExternalStore } from 'react';

export type LiveState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface LiveStatus {
  state: LiveState;
  lastEventAt: Date | null;
}

let status: LiveStatus = { state: 'connecting', lastEventAt: null };
const listeners = new Set<() => void>();

function update(next: Partial<LiveStatus>) {
  status = { ...status, ...next };
  for (const listener of listeners) listener();
}

/** "Last event" is shown to the second: it is updated at most once a second, not per event. */
let lastShown = 0;

export const liveStatus = {
  set: (state: LiveState) => status.state !== state && update({ state }),
  event: () => {
    if (Date.now() - lastShown < 1000) return;
    lastShown = Date.now();
    update({ lastEventAt: new Date() });
  },
  reset: () => update({ state: 'connecting', lastEventAt: null }),
};

export function useLiveStatus(): LiveStatus {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => status,
  );
}
