// Spend against a limit in one window ("UTC day" / "UTC month") or against a lease's cap: a bar
// that turns from calm to warning to full, with the figures beside it. Light on purpose (plain
// elements around Mantine's Progress): a live table renders dozens of these several times a second.
import { Progress } from '@mantine/core';
import { memo } from 'react';
import { formatUsd, share } from '../lib/format';
import classes from './SpendBar.module.css';

export const shareColor = (percent: number) =>
  percent >= 100 ? 'red' : percent >= 80 ? 'orange' : percent >= 60 ? 'yellow' : 'teal';

export const SpendBar = memo(function SpendBar({
  spent,
  limit,
  window,
  compact = false,
}: {
  spent: string;
  limit: string | null | undefined;
  window: 'UTC day' | 'UTC month' | 'cap';
  compact?: boolean;
}) {
  const percent = share(spent, limit);
  const label =
    window === 'cap'
      ? `${formatUsd(spent)} of a ${formatUsd(limit)} cap`
      : `${formatUsd(spent)} of ${limit == null ? 'no limit' : formatUsd(limit)} this ${window}`;
  return (
    <div className={compact ? classes.compact : classes.bar} title={label}>
      <div className={classes.figures}>
        <span>{formatUsd(spent)}</span>
        <span className={classes.limit}>{limit == null ? 'no limit' : `/ ${formatUsd(limit)}`}</span>
      </div>
      <Progress
        value={percent === null ? 0 : Math.min(100, percent)}
        color={percent === null ? 'gray' : shareColor(percent)}
        size={compact ? 'sm' : 'md'}
        aria-label={label}
        transitionDuration={300}
      />
    </div>
  );
});
