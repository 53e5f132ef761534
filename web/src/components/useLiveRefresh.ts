// Aggregates (summaries, charts) are asked again when live events that touch them arrive — at
// most once per `intervalMs`, and never on a timer of their own: no event, no request. Events are
// watched without rendering: the page renders when its refreshed data arrives, not per event.
import { useEffect, useRef } from 'react';
import { liveEvents } from '../events';
import type { EventItemFragment } from '../gql/graphql';

export function useLiveRefresh(
  refresh: () => void,
  matches: (event: EventItemFragment) => boolean = () => true,
  intervalMs = 3000,
) {
  const latest = useRef({ refresh, matches });
  latest.current = { refresh, matches };

  useEffect(() => {
    let last = 0;
    let pending: ReturnType<typeof setTimeout> | undefined;
    const unwatch = liveEvents.watch((event) => {
      if (pending || !latest.current.matches(event)) return;
      pending = setTimeout(
        () => {
          pending = undefined;
          last = Date.now();
          latest.current.refresh();
        },
        Math.max(0, last + intervalMs - Date.now()),
      );
    });
    return () => {
      unwatch();
      clearTimeout(pending);
    };
  }, [intervalMs]);
}
