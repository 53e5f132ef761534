// A key's spend windows are calendar-aligned in UTC. The row keeps the window it last counted in;
// a window that is not the current one reads as zero, so no job ever resets anything.
import { utcDate } from '../core/clock.js';
import { Decimal } from '../core/money.js';

/** Whether a window column (a date) holds the current window. */
const isCurrent = (window: Date | null, now: Date, unit: 'day' | 'month') =>
  window?.toISOString().slice(0, 10) === utcDate(now, unit);

interface SpendRow {
  spendDay: Date | null;
  spendTodayUsd: Decimal;
  spendMonth: Date | null;
  spendThisMonthUsd: Decimal;
  dailyLimitUsd: Decimal | null;
  monthlyLimitUsd: Decimal | null;
}

export function currentSpend(key: SpendRow, now: Date) {
  const today = isCurrent(key.spendDay, now, 'day') ? new Decimal(key.spendTodayUsd) : new Decimal(0);
  const month = isCurrent(key.spendMonth, now, 'month') ? new Decimal(key.spendThisMonthUsd) : new Decimal(0);
  const remaining = (limit: Decimal | null, spent: Decimal) =>
    limit === null ? null : Decimal.max(0, new Decimal(limit).minus(spent));
  return {
    today,
    month,
    remainingToday: remaining(key.dailyLimitUsd, today),
    remainingThisMonth: remaining(key.monthlyLimitUsd, month),
  };
}
