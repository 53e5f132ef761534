// A daily spend chart over the last days (UTC), one series per provider or a single one.
import '@mantine/charts/styles.css';
import { BarChart } from '@mantine/charts';
import { Text } from '@mantine/core';
import { memo } from 'react';
import { formatUsd } from '../lib/format';

export interface DailySeries {
  name: string;
  label: string;
  color: string;
  points: readonly { day?: string | null; costUsd: string }[];
}

/** "26 Nov" from "2026-11-26". */
const dayLabel = (day: string) =>
  new Date(`${day}T00:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });

export const SpendChart = memo(function SpendChart({
  series,
  height = 240,
  stacked = true,
}: {
  series: readonly DailySeries[];
  height?: number;
  stacked?: boolean;
}) {
  const days = series[0]?.points.map((p) => p.day ?? '') ?? [];
  const data = days.map((day, i) => ({
    day: dayLabel(day),
    ...Object.fromEntries(series.map((s) => [s.name, Number(s.points[i]?.costUsd ?? 0)])),
  }));
  const total = data.reduce(
    (sum, row) => sum + series.reduce((s, x) => s + Number((row as Record<string, unknown>)[x.name] ?? 0), 0),
    0,
  );
  if (!days.length)
    return (
      <Text size="sm" c="dimmed">
        No data.
      </Text>
    );
  return (
    <div role="img" aria-label={`Daily spend over ${days.length} UTC days: ${formatUsd(String(total))} in all`}>
      <BarChart
        h={height}
        data={data}
        dataKey="day"
        type={stacked && series.length > 1 ? 'stacked' : 'default'}
        series={series.map((s) => ({ name: s.name, label: s.label, color: s.color }))}
        valueFormatter={(value) => formatUsd(String(value))}
        withLegend={series.length > 1}
        tickLine="y"
        gridAxis="y"
        xAxisProps={{ interval: 'preserveStartEnd', minTickGap: 16 }}
        // A live console redraws these as data arrives: no animation on every refresh.
        barProps={{ isAnimationActive: false }}
      />
    </div>
  );
});
