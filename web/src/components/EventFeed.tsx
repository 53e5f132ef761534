// A live feed of lease events: the newest from the log first, then whatever the session hears,
// with the events that stop an agent marked.
import { Badge, Group, Paper, ScrollArea, Stack, Switch, Text } from '@mantine/core';
import { IconPlayerStopFilled } from '@tabler/icons-react';
import { memo, useDeferredValue, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { RecentEventsQuery } from '../api/documents';
import { useLiveEvents } from '../events';
import type { EventItemFragment } from '../gql/graphql';
import { formatUsd } from '../lib/format';
import { ErrorNotice } from './ErrorNotice';
import classes from './EventFeed.module.css';
import { LeaseLink, UserLink } from './Links';
import { RelativeTime } from './RelativeTime';
import { EventTypeBadge } from './StatusBadge';
import { useLiveData } from './useLiveData';

function describe(event: EventItemFragment): string {
  const details = (event.details ?? {}) as Record<string, unknown>;
  if (event.type === 'USAGE')
    return `${details.requests ?? 1} request(s), ${formatUsd(String(details.costUsd ?? '0'))}`;
  if (event.type === 'EXTENDED' && details.spendCapUsd && !details.expiresAt)
    return `cap set to ${formatUsd(String(details.spendCapUsd))}`;
  if (event.type === 'EXTENDED')
    return details.reactivated ? 'reactivated' : details.resumed ? 'resumed under a new cap' : 'extended';
  if (typeof details.reason === 'string') return details.reason;
  return event.agentId ? `agent ${event.agentId}` : '';
}

const NO_EVENTS: EventItemFragment[] = [];

const EventRow = memo(function EventRow({ event }: { event: EventItemFragment }) {
  return (
    <div className={classes.event} data-event-type={event.type} data-lease-id={event.leaseId}>
      <div className={classes.line}>
        <EventTypeBadge type={event.type} />
        {event.stopAgent && (
          <Badge
            color="red.9"
            size="xs"
            variant="filled"
            leftSection={<IconPlayerStopFilled size={10} />}
            title="The worker stops the agent"
          >
            stops agent
          </Badge>
        )}
        <LeaseLink id={event.leaseId} />
        <RelativeTime value={event.at} size="xs" c="dimmed" ml="auto" />
      </div>
      <div className={classes.line}>
        <UserLink id={event.userId} size="xs" style={{ flexShrink: 0 }} />
        <span className={classes.description}>{describe(event)}</span>
      </div>
    </div>
  );
});

export function EventFeed({ keyId, userId, height = 420 }: { keyId?: string; userId?: string; height?: number }) {
  const [{ data, error }] = useQuery({ query: RecentEventsQuery, variables: { first: 40, keyId, userId } });
  // Rendered at the pace of a table, however fast events come.
  const live = useLiveData(useLiveEvents());
  const [showUsage, setShowUsage] = useState(false);
  const events = useMemo(() => {
    const seen = new Set<string>();
    const all = [
      ...live.filter((e) => (!keyId || e.keyId === keyId) && (!userId || e.userId === userId)),
      ...(data?.recentLeaseEvents ?? []),
    ];
    return all
      .filter((e) => !seen.has(e.cursor) && seen.add(e.cursor) && (showUsage || e.type !== 'USAGE'))
      .slice(0, 50);
  }, [live, data, keyId, userId, showUsage]);
  // Drawn in the background (time-sliced): a page that opens with a feed opens at once.
  const shown = useDeferredValue(events, NO_EVENTS);

  return (
    <Paper withBorder p="sm" radius="md">
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="sm">
          Lease events
        </Text>
        <Switch
          size="xs"
          label="Show usage"
          checked={showUsage}
          onChange={(e) => setShowUsage(e.currentTarget.checked)}
        />
      </Group>
      {error && <ErrorNotice error={error} title="Events could not be loaded" />}
      <ScrollArea h={height} type="auto">
        <Stack gap={8} data-testid="event-feed" aria-live="polite" aria-relevant="additions">
          {shown.length === 0 && (
            <Text size="sm" c="dimmed" py="md" ta="center">
              No lease events yet. They appear here the moment a lease is granted, used or ended.
            </Text>
          )}
          {shown.map((event) => (
            <EventRow key={event.cursor} event={event} />
          ))}
        </Stack>
      </ScrollArea>
    </Paper>
  );
}
