// The demo's clock: real time, except while the backfill writes the past 30 days through MPK's
// own services; then it reads the moment being written, so grants, usage and ends land on that day.
import type { Clock } from '../server/core/clock.js';

export const DAY_MS = 86_400_000;

export interface DemoClock extends Clock {
  /** Reads `at` until told otherwise; only the past, so that nothing is written ahead of real time. */
  travelTo(at: Date): void;
  backToPresent(): void;
}

export function createDemoClock(): DemoClock {
  let past: number | null = null;
  return {
    now: () => new Date(past ?? Date.now()),
    travelTo(at) {
      if (at.getTime() > Date.now())
        throw new Error(`The demo clock only goes back in time (asked for ${at.toISOString()})`);
      past = at.getTime();
    },
    backToPresent() {
      past = null;
    },
  };
}
