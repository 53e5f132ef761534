// One lease in full: who holds it, on which key, its time left and spend against its cap, its
// event timeline (live), and its usage records page by page. Admins extend, re-cap or revoke.
// On a MINT key: the lease's own provider key (masked), whether the ended lease is clean (its key
// gone at the provider) and the provider's own figure for it; the lease's provider jobs, live.
import { Alert, Badge, Group, Paper, SimpleGrid, Stack, Text, Timeline, Title } from '@mantine/core';
import { IconPlayerStopFilled } from '@tabler/icons-react';
import { DataTable } from 'mantine-datatable';
import { useMemo } from 'react';
import { useParams } from 'react-router';
import { useQuery } from 'urql';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Fact } from '../../components/Fact';
import { KeyLink, UserLink } from '../../components/Links';
import { Money } from '../../components/Money';
import { PageHeader } from '../../components/PageHeader';
import { PageLoader } from '../../components/PageLoader';
import { Pager } from '../../components/Pager';
import { hasUnfinished, ProviderJobsTable, useFollowJobs, useProviderJobs } from '../../components/ProviderJobs';
import { RelativeTime } from '../../components/RelativeTime';
import { SpendBar } from '../../components/SpendBar';
import { dark, EventTypeBadge, LeaseStatusBadge, MintedKeyStatusBadge } from '../../components/StatusBadge';
import { useLiveRefresh } from '../../components/useLiveRefresh';
import { useLiveEvents } from '../../events';
import type { CostSource, EventItemFragment, MintedKeyFieldsFragment, ProviderJobRowFragment } from '../../gql/graphql';
import { FRAMEWORK_NAMES, formatUsd, PROVIDER_NAMES, shortId } from '../../lib/format';
import { canAdminister, canSee } from '../../lib/roles';
import { useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';
import { LeaseDetailQuery } from './documents';
import { LeaseActions } from './LeaseActions';

const PAGE = 25;
/** Where a request's cost came from: flagged when no provider or price table said (NONE, ESTIMATED). */
const COST_SOURCE_COLORS: Record<CostSource, string> = {
  PROVIDER: 'gray',
  PRICE: 'gray',
  REPORTED: 'gray',
  ESTIMATED: 'yellow',
  NONE: 'orange',
};

/** What an event's details say, in a line. */
function detailsLine(event: EventItemFragment): string {
  const d = (event.details ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof d.reason === 'string') parts.push(d.reason);
  if (typeof d.from === 'string' && event.stopAgent) parts.push(`was ${d.from}`);
  if (event.type === 'USAGE') parts.push(`${d.requests ?? 1} request(s) for ${formatUsd(String(d.costUsd ?? 0))}`);
  if (typeof d.bySeconds === 'number')
    parts.push(`+${Math.round(d.bySeconds / 3600)} h, now until ${new Date(String(d.expiresAt)).toUTCString()}`);
  if (typeof d.spendCapUsd === 'string') parts.push(`cap ${formatUsd(d.spendCapUsd)}`);
  if (d.reactivated) parts.push('reactivated');
  if (d.resumed) parts.push('resumed');
  if (typeof d.keyId === 'string' && event.type === 'GRANTED') parts.push(`on key ${shortId(d.keyId)}`);
  return parts.join(' · ');
}

const shortHash = (id: string) => (id.length > 16 ? `${id.slice(0, 12)}…` : id);

/**
 * Whether an ended lease is clean: its provider key deleted, or past its provider-side expiry (the
 * provider no longer honours it). Until then the key may still work at the provider.
 */
function cleanliness(minted: MintedKeyFieldsFragment, open: boolean, jobs: readonly ProviderJobRowFragment[]) {
  if (open) return null;
  const gone = minted.status === 'DELETED' || minted.status === 'EXPIRED' || Date.parse(minted.expiresAt) <= Date.now();
  if (gone)
    return {
      clean: true,
      text:
        minted.status === 'DELETED'
          ? 'Ended and clean: its provider key is deleted at the provider.'
          : 'Ended and clean: its provider key has expired at the provider.',
    };
  const stuck = jobs.some((j) => j.kind === 'DELETE' && j.status === 'IRRECOVERABLE');
  return {
    clean: false,
    text: stuck
      ? 'Ended, not clean: deleting its provider key failed for good, and the key still works at the provider until its expiry. Retry the DELETE job below.'
      : 'Ended, waiting for its provider key to be deleted at the provider.',
  };
}

function MintedKeyPanel({
  minted,
  open,
  jobs,
}: {
  minted: MintedKeyFieldsFragment;
  open: boolean;
  jobs: readonly ProviderJobRowFragment[];
}) {
  const state = cleanliness(minted, open, jobs);
  const drift = minted.driftUsd == null ? null : Number(minted.driftUsd);
  return (
    <Paper withBorder p="md" radius="md" data-testid="minted-key">
      <Group justify="space-between" mb="xs">
        <Group gap="xs">
          <Text fw={600} size="sm">
            Minted provider key
          </Text>
          <MintedKeyStatusBadge status={minted.status} />
        </Group>
        <Text size="xs" c="dimmed" ff="monospace">
          {minted.name}
        </Text>
      </Group>
      {state && (
        <Alert
          color={state.clean ? dark('teal') : dark('orange')}
          variant="light"
          p="xs"
          mb="sm"
          data-testid="lease-clean"
          data-clean={state.clean}
        >
          <Text size="sm">{state.text}</Text>
        </Alert>
      )}
      <SimpleGrid cols={{ base: 2, sm: 4, lg: 8 }} spacing="md">
        <Fact label="Key">
          <Text size="sm" ff="monospace">
            {minted.maskedKey ?? 'not made yet'}
          </Text>
        </Fact>
        <Fact label="Provider key id">
          {/* OpenRouter's ids are 64-character hashes: the start, and the whole id on hover. */}
          <Text
            size="sm"
            ff="monospace"
            title={minted.providerKeyId ?? undefined}
            data-provider-key-id={minted.providerKeyId}
          >
            {minted.providerKeyId ? shortHash(minted.providerKeyId) : '—'}
          </Text>
        </Fact>
        <Fact label="Provider-side limit">
          {minted.limitUsd == null ? <Text size="sm">none</Text> : <Money value={minted.limitUsd} exact size="sm" />}
        </Fact>
        <Fact label="Provider-side expiry">
          <RelativeTime value={minted.expiresAt} size="sm" />
        </Fact>
        <Fact label="Created at the provider">
          <RelativeTime value={minted.providerCreatedAt} fallback="not yet" size="sm" />
        </Fact>
        <Fact label="Deleted">
          <RelativeTime value={minted.deletedAt} fallback="no" size="sm" />
        </Fact>
        <Fact label="Provider's usage">
          {minted.providerUsageUsd == null ? (
            <Text size="sm" c="dimmed">
              not read yet
            </Text>
          ) : (
            <Money value={minted.providerUsageUsd} exact size="sm" />
          )}
          {minted.providerCheckedAt && (
            <Text size="xs" c="dimmed">
              read <RelativeTime value={minted.providerCheckedAt} size="xs" />
            </Text>
          )}
        </Fact>
        <Fact label="Drift (provider − MPK)">
          {drift == null ? (
            <Text size="sm" c="dimmed" title="No reading yet, or a Venice key older than the 7 days its figure covers">
              n/a
            </Text>
          ) : (
            <Money
              value={minted.driftUsd}
              exact
              size="sm"
              c={Math.abs(drift) >= 0.000001 ? dark('orange') : undefined}
            />
          )}
        </Fact>
      </SimpleGrid>
      {minted.providerError && (
        <Text size="sm" c={dark('orange')} mt="xs" role="status">
          Last reading failed: {minted.providerError}
        </Text>
      )}
    </Paper>
  );
}

export default function LeaseDetailPage() {
  const { id = '' } = useParams();
  const me = useMe();
  const paging = useUrlFilters([] as const);
  const { after, before } = paging.page;
  const [{ data, error }, refresh] = useQuery({
    query: LeaseDetailQuery,
    variables: { id, ...(before ? { last: PAGE, before } : { first: PAGE, after }) },
  });
  const live = useLiveEvents();
  const lease = data?.lease;
  // Every change of this lease may queue a provider job, which changes its minted key: the minted
  // key is asked again, and followed while its jobs are still to run. Jobs are for admins and
  // observers (workers see this page too).
  const again = () => refresh({ requestPolicy: 'network-only' });
  useLiveRefresh(again, (e) => e.leaseId === id, 2000);
  const jobsOf = useProviderJobs({ leaseId: id }, canSee(me.role, 'keys'));
  const jobs = jobsOf.jobs;
  useFollowJobs(Boolean(lease?.mintedKey) && (hasUnfinished(jobs) || lease?.mintedKey?.status === 'PENDING'), again);
  const events = useMemo(() => {
    const seen = new Set<string>();
    return [...live.filter((e) => e.leaseId === id), ...(lease?.events ?? [])].filter(
      (e) => !seen.has(e.cursor) && seen.add(e.cursor),
    );
  }, [live, lease, id]);

  if (error && !data) return <ErrorNotice error={error} title="The lease could not be loaded" />;
  if (!data) return <PageLoader />;
  if (!lease) return <EmptyState title="No such lease">It does not exist, or it is not yours to see.</EmptyState>;
  const records = data.usageRecords.edges.map((e) => e.node);
  const open = lease.status === 'ACTIVE' || lease.status === 'SUSPENDED';

  return (
    <Stack gap="md">
      <PageHeader
        title={
          <Group gap="sm">
            <span>Lease {shortId(lease.id)}</span>
            <LeaseStatusBadge status={lease.status} />
          </Group>
        }
        description={
          <Text span ff="monospace" size="sm">
            {lease.id}
          </Text>
        }
        actions={canAdminister(me.role) && <LeaseActions lease={lease} size="sm" />}
      />
      <Paper withBorder p="md" radius="md">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }} spacing="md">
          <Fact label="User">
            <UserLink id={lease.user.id} />{' '}
            <Badge size="xs" variant="light">
              {lease.tier}
            </Badge>
          </Fact>
          <Fact label="Agent">{lease.agentId ?? '—'}</Fact>
          <Fact label="Key">
            {lease.key ? (
              <Stack gap={0}>
                <KeyLink id={lease.key.id} label={lease.key.label} />
                <Text size="xs" ff="monospace" c="dimmed">
                  {lease.key.maskedKey}
                </Text>
              </Stack>
            ) : (
              '—'
            )}
          </Fact>
          <Fact label="Provider / framework">
            {PROVIDER_NAMES[lease.provider]} · {FRAMEWORK_NAMES[lease.framework]}
          </Fact>
          <Fact label="Granted">
            <RelativeTime value={lease.grantedAt} />
          </Fact>
          <Fact label={open ? 'Time left' : 'Ended'}>
            {open ? (
              <RelativeTime value={lease.expiresAt} fw={600} />
            ) : (
              <RelativeTime value={lease.endedAt ?? lease.expiresAt} />
            )}
            {lease.endReason && (
              <Text size="xs" c="dimmed">
                {lease.endReason}
              </Text>
            )}
          </Fact>
        </SimpleGrid>
      </Paper>
      {lease.mintedKey && <MintedKeyPanel minted={lease.mintedKey} open={open} jobs={jobs} />}
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Paper withBorder p="md" radius="md">
          <Stack gap="xs">
            <Text fw={600} size="sm">
              Spend against cap
            </Text>
            <SpendBar spent={lease.usageUsd} limit={lease.spendCapUsd} window="cap" />
            <Group gap="lg">
              <Fact label="Spent">
                <Money value={lease.usageUsd} exact />
              </Fact>
              <Fact label="Cap">
                <Money value={lease.spendCapUsd} exact />
              </Fact>
              <Fact label="Requests">{lease.requestCount.toLocaleString('en-US')}</Fact>
              <Fact label="Last used">
                <RelativeTime value={lease.lastUsedAt} fallback="never" />
              </Fact>
            </Group>
          </Stack>
        </Paper>
        <Paper withBorder p="md" radius="md" style={{ gridColumn: 'span 2' }}>
          <Text fw={600} size="sm" mb="xs">
            Events
          </Text>
          {events.length === 0 ? (
            <Text size="sm" c="dimmed">
              No events yet.
            </Text>
          ) : (
            <Timeline bulletSize={14} lineWidth={2} data-testid="lease-timeline">
              {events.map((event) => (
                <Timeline.Item
                  key={event.cursor}
                  color={event.stopAgent ? 'red' : 'indigo'}
                  title={
                    <Group gap="xs">
                      <EventTypeBadge type={event.type} />
                      {event.stopAgent && (
                        <Badge color="red.9" size="xs" leftSection={<IconPlayerStopFilled size={10} />}>
                          stops agent
                        </Badge>
                      )}
                      <RelativeTime value={event.at} size="xs" c="dimmed" />
                    </Group>
                  }
                >
                  <Text size="xs" c="dimmed">
                    {detailsLine(event) || '\u00a0'}
                  </Text>
                </Timeline.Item>
              ))}
            </Timeline>
          )}
        </Paper>
      </SimpleGrid>
      {lease.mintedKey && <ProviderJobsTable jobsOf={jobsOf} canRetry={canAdminister(me.role)} showLease={false} />}
      <Stack gap={0}>
        <Title order={2} size="h4" mb="xs">
          Usage records
        </Title>
        <DataTable
          withTableBorder
          borderRadius="sm"
          striped
          minHeight={records.length ? undefined : 160}
          records={records}
          idAccessor="id"
          noRecordsText="No metered requests yet."
          columns={[
            { accessor: 'at', title: 'When', render: (r) => <RelativeTime value={r.at} size="sm" /> },
            {
              accessor: 'requestId',
              title: 'Request',
              // MPK's id (x-mpk-request-id), and the provider's beside it for reconciling with its bills.
              render: (r) => (
                <Stack gap={0}>
                  <Text span ff="monospace" size="xs">
                    {r.requestId}
                  </Text>
                  {r.providerRequestId && (
                    <Text span ff="monospace" size="xs" c="dimmed" title="The provider's id for this request">
                      {r.providerRequestId}
                    </Text>
                  )}
                </Stack>
              ),
            },
            { accessor: 'model', render: (r) => r.model ?? '—' },
            {
              accessor: 'promptTokens',
              title: 'Prompt tokens',
              textAlign: 'right',
              render: (r) => r.promptTokens ?? '—',
            },
            {
              accessor: 'completionTokens',
              title: 'Completion tokens',
              textAlign: 'right',
              render: (r) => r.completionTokens ?? '—',
            },
            {
              accessor: 'costUsd',
              title: 'Cost',
              textAlign: 'right',
              render: (r) => <Money value={r.costUsd} exact size="sm" />,
            },
            {
              accessor: 'costSource',
              title: 'Cost from',
              render: (r) => (
                <Badge size="xs" variant="light" color={dark(COST_SOURCE_COLORS[r.costSource])}>
                  {r.costSource}
                </Badge>
              ),
            },
          ]}
        />
        <Pager connection={data.usageRecords} shown={records.length} goTo={paging.goTo} noun="records" />
      </Stack>
    </Stack>
  );
}
