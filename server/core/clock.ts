// Time comes from an injected clock so that tests move it instead of sleeping.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock for tests: starts at `start` and only moves when told to. */
export function createManualClock(start: Date | string = '2026-01-15T12:00:00.000Z') {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set(to: Date | string) {
      current = new Date(to).getTime();
    },
    advance(ms: number) {
      current += ms;
    },
  };
}
export type ManualClock = ReturnType<typeof createManualClock>;

/**
 * The UTC calendar window `now` falls in, as the date it starts on ('2026-03-10', '2026-03-01'):
 * the one definition of the spend windows, for SQL parameters and for comparisons alike.
 */
export function utcDate(now: Date, unit: 'day' | 'month'): string {
  const iso = now.toISOString();
  return unit === 'day' ? iso.slice(0, 10) : `${iso.slice(0, 7)}-01`;
}
