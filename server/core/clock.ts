// Time comes from an injected clock so that tests move it instead of sleeping.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * The UTC calendar window `now` falls in, as the date it starts on ('2026-03-10', '2026-03-01'):
 * the one definition of the spend windows, for SQL parameters and for comparisons alike.
 */
export function utcDate(now: Date, unit: 'day' | 'month'): string {
  const iso = now.toISOString();
  return unit === 'day' ? iso.slice(0, 10) : `${iso.slice(0, 7)}-01`;
}
