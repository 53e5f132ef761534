// A clock for tests: injected into the app (startTestServer({ clock })), it starts at `start` and
// only moves when told to, so tests move time instead of sleeping.
import type { Clock } from '../../server/core/clock.js';

export interface ManualClock extends Clock {
  set(to: Date | string): void;
  advance(ms: number): void;
}

export function createManualClock(start: Date | string = '2026-01-15T12:00:00.000Z'): ManualClock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set(to) {
      current = new Date(to).getTime();
    },
    advance(ms) {
      current += ms;
    },
  };
}
