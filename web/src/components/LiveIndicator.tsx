// Live is visible: whether the event stream is connected, and when the last event came.
import { Badge, Group, Text } from '@mantine/core';
import { useLiveStatus } from '../live';
import { RelativeTime } from './RelativeTime';

const LABELS = {
  connecting: 'connecting',
  connected: 'live',
  reconnecting: 'reconnecting',
  closed: 'offline',
} as const;
const COLORS = { connecting: 'gray', connected: 'teal', reconnecting: 'orange', closed: 'red' } as const;

export function LiveIndicator() {
  const { state, lastEventAt } = useLiveStatus();
  return (
    <Group gap={6} wrap="nowrap" aria-live="polite" data-testid="live-indicator" data-state={state}>
      <Badge color={COLORS[state]} variant="dot" size="md">
        {LABELS[state]}
      </Badge>
      <Text size="xs" c="dimmed" visibleFrom="sm">
        last event <RelativeTime value={lastEventAt?.toISOString()} fallback="none yet" size="xs" />
      </Text>
    </Group>
  );
}
