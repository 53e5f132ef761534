// A key's spend windows are calendar-aligned in UTC. The row keeps the window it last counted in;
// a window that is not the current one reads as zero, so no job ever resets anything.
import { Decimal } from '../core/money.js';

export function utcDay(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

export function utcMonth(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

interface SpendRow {
  spendDay: Date | null;
  spendTodayUsd: Decimal;
  spendMonth: Date | null;
  spendThisMonthUsd: Decimal;
  dailyLimitUsd: Decimal | null;
  monthlyLimitUsd: Decimal | null;
}

export function currentSpend(key: SpendRow, now: Date) {
  const today = key.spendDay?.getTime() === utcDay(now).getTime() ? new Decimal(key.spendTodayUsd) : new Decimal(0);
  const month = key.spendMonth?.getTime() === utcMonth(now).getTime() ? new Decimal(key.spendThisMonthUsd) : new Decimal(0);
  const remaining = (limit: Decimal | null, spent: Decimal) => (limit === null ? null : Decimal.max(0, new Decimal(limit).minus(spent)));
  return {
    today,
    month,
    remainingToday: remaining(key.dailyLimitUsd, today),
    remainingThisMonth: remaining(key.monthlyLimitUsd, month),
  };
}
