// One key in full: its settings, spend against its limits (exact), a 30-day daily spend chart,
// spend by model, the provider's own figures beside MPK's, its leases and its audit trail. A MINT
// key shows its minted keys in use against their cap and its provider jobs (live, with Retry).
import { Anchor, Badge, Code, Group, Paper, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { DataTable } from 'mantine-datatable';
import { useMemo } from 'react';
import { Link, useParams } from 'react-router';
import { useQuery } from 'urql';
import { AuditDetails } from '../../components/AuditDetails';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Fact } from '../../components/Fact';
import { LeaseLink, UserLink } from '../../components/Links';
import { Money } from '../../components/Money';
import { PageHeader } from '../../components/PageHeader';
import { PageLoader } from '../../components/PageLoader';
import { ProviderJobsTable, useProviderJobs } from '../../components/ProviderJobs';
import { RelativeTime } from '../../components/RelativeTime';
import { SpendBar } from '../../components/SpendBar';
import { SpendChart } from '../../components/SpendChart';
import { KeyModeBadge, KeyStatusBadge, LeaseStatusBadge } from '../../components/StatusBadge';
import { useKeyUsage } from '../../components/useKeyUsage';
import { useLiveRefresh } from '../../components/useLiveRefresh';
import type { KeyDetailQuery as KeyDetail } from '../../gql/graphql';
import { formatTotal, PROVIDER_NAMES } from '../../lib/format';
import { canAdminister } from '../../lib/roles';
import { useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';
import { KeyDetailQuery } from './documents';
import { KeyActions } from './KeyActions';

type Key = NonNullable<KeyDetail['managedKey']>;

function Reconciliation({ usage, mode }: { usage: Key['providerUsage']; mode: Key['mode'] }) {
  if (mode === 'MINT')
    return (
      <Text size="sm" c="dimmed">
        A minting key's leases spend on their own provider keys: the provider's figure and the drift of each are on its
        lease's page (Minted provider key), read every 5 minutes.
      </Text>
    );
  if (!usage)
    return (
      <Text size="sm" c="dimmed">
        The provider has not been asked yet: the reconciliation job asks OpenRouter and Venice every 5 minutes.
      </Text>
    );
  const rows: [string, string | null | undefined][] = [
    ['Provider: today', usage.usageTodayUsd],
    ['Provider: this month', usage.usageThisMonthUsd],
    ['Drift today (provider − MPK)', usage.driftTodayUsd],
    ['Drift this month', usage.driftThisMonthUsd],
    ['Provider limit', usage.limitUsd],
    ['Limit remaining', usage.limitRemainingUsd],
    ['Balance', usage.balanceUsd],
  ];
  return (
    <Stack gap="xs">
      <Text size="xs" c="dimmed">
        Checked <RelativeTime value={usage.checkedAt} size="xs" />
      </Text>
      {usage.error && (
        <Text size="sm" c="orange" role="status">
          Last check failed: {usage.error}
        </Text>
      )}
      <Table withRowBorders={false} verticalSpacing={2}>
        <Table.Tbody>
          {rows
            .filter(([, value]) => value != null)
            .map(([label, value]) => (
              <Table.Tr key={label}>
                <Table.Td>
                  <Text size="sm">{label}</Text>
                </Table.Td>
                <Table.Td ta="right">
                  <Money value={value} exact size="sm" />
                </Table.Td>
              </Table.Tr>
            ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

export default function KeyDetailPage() {
  const { id = '' } = useParams();
  const me = useMe();
  useKeyUsage(id);
  const [{ data, error }, refresh] = useQuery({ query: KeyDetailQuery, variables: { id } });
  // The chart and per-model figures move with this key's usage: asked again when it is used.
  useLiveRefresh(
    () => refresh({ requestPolicy: 'network-only' }),
    (e) => e.keyId === id,
    5000,
  );
  // The URL's cursor pages this key's provider jobs (the page's one paged list).
  const jobPaging = useUrlFilters([] as const);
  const jobs = useProviderJobs({ keyId: id }, true, jobPaging.page);

  const daily = data?.daily;
  const series = useMemo(() => [{ name: 'spend', label: 'Spend', color: 'indigo.6', points: daily ?? [] }], [daily]);
  if (error && !data) return <ErrorNotice error={error} title="The key could not be loaded" />;
  if (!data) return <PageLoader />;
  const key = data.managedKey;
  if (!key) return <EmptyState title="No such key">It may have been removed, or the link is wrong.</EmptyState>;
  const leases = data.leases.edges.map((e) => e.node);

  return (
    <Stack gap="md">
      <PageHeader
        title={
          <Group gap="sm">
            <span>{key.label}</span>
            <KeyStatusBadge status={key.status} />
            <Badge variant="outline" size="sm">
              {PROVIDER_NAMES[key.provider]}
            </Badge>
            <KeyModeBadge mode={key.mode} />
          </Group>
        }
        description={
          key.disabledReason ? (
            `Disabled: ${key.disabledReason}`
          ) : (
            <Text span ff="monospace" size="sm">
              {key.id}
            </Text>
          )
        }
        actions={canAdminister(me.role) && <KeyActions keyRow={key} form={key} variant="buttons" />}
      />
      <Paper withBorder p="md" radius="md">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: key.mode === 'MINT' ? 7 : 6 }}>
          <Fact label={key.mode === 'MINT' ? 'Management key' : 'Key'}>
            <Text ff="monospace" size="sm">
              {key.maskedKey}
            </Text>
          </Fact>
          <Fact label="Base URL">
            <Text size="sm" style={{ wordBreak: 'break-all' }}>
              {key.baseUrl}
            </Text>
          </Fact>
          <Fact label="Models">
            <Text size="sm">{key.defaultModel ?? '—'}</Text>
            {key.fallbackModels.length > 0 && (
              <Text size="xs" c="dimmed">
                then {key.fallbackModels.join(', ')}
              </Text>
            )}
          </Fact>
          <Fact label="Leases">
            <Text size="sm" ff="monospace">
              {key.activeLeaseCount} active / {key.maxActiveLeases ?? '∞'} max
            </Text>
          </Fact>
          {key.mode === 'MINT' && (
            <Fact label="Minted keys">
              <Text size="sm" ff="monospace" data-testid="minted-count">
                {key.mintedKeyCount} in use / {key.maxMintedKeys ?? '∞'} max
              </Text>
              <Text size="xs" c="dimmed">
                a provider key per lease, until deleted
              </Text>
            </Fact>
          )}
          <Fact label="Last used">
            <RelativeTime value={key.lastUsedAt} fallback="never" size="sm" />
          </Fact>
          <Fact label="Added">
            <RelativeTime value={key.createdAt} size="sm" />
          </Fact>
        </SimpleGrid>
      </Paper>
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Paper withBorder p="md" radius="md">
          <Stack gap="sm">
            <Text fw={600} size="sm">
              Spend against limits
            </Text>
            <SpendBar spent={key.spendTodayUsd} limit={key.dailyLimitUsd} window="UTC day" />
            <Text size="xs" c="dimmed">
              UTC day: <Money value={key.spendTodayUsd} exact size="xs" /> spent
              {key.remainingTodayUsd != null && (
                <>
                  , <Money value={key.remainingTodayUsd} exact size="xs" /> left
                </>
              )}
            </Text>
            <SpendBar spent={key.spendThisMonthUsd} limit={key.monthlyLimitUsd} window="UTC month" />
            <Text size="xs" c="dimmed">
              UTC month: <Money value={key.spendThisMonthUsd} exact size="xs" /> spent
              {key.remainingThisMonthUsd != null && (
                <>
                  , <Money value={key.remainingThisMonthUsd} exact size="xs" /> left
                </>
              )}
            </Text>
          </Stack>
        </Paper>
        <Paper withBorder p="md" radius="md" style={{ gridColumn: 'span 2' }}>
          <Text fw={600} size="sm" mb="xs">
            Daily spend, last 30 UTC days
          </Text>
          <SpendChart series={series} height={200} />
        </Paper>
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Paper withBorder p="md" radius="md">
          <Text fw={600} size="sm" mb="xs">
            Spend by model, last 30 days
          </Text>
          <DataTable
            records={data.byModel.map((p, i) => ({ ...p, id: `${p.model ?? '(none)'}-${i}` }))}
            minHeight={data.byModel.length ? undefined : 120}
            noRecordsText="No usage in the last 30 days."
            columns={[
              {
                accessor: 'model',
                render: (p) =>
                  p.model ?? (
                    <Text span c="dimmed" size="sm">
                      (not named)
                    </Text>
                  ),
              },
              { accessor: 'requests', textAlign: 'right' },
              {
                accessor: 'tokens',
                title: 'Tokens in / out',
                textAlign: 'right',
                noWrap: true,
                render: (p) =>
                  `${p.promptTokens.toLocaleString('en-US')} / ${p.completionTokens.toLocaleString('en-US')}`,
              },
              {
                accessor: 'costUsd',
                title: 'Cost',
                textAlign: 'right',
                render: (p) => <Money value={p.costUsd} exact size="sm" />,
              },
            ]}
          />
        </Paper>
        <Paper withBorder p="md" radius="md">
          <Text fw={600} size="sm" mb="xs">
            Provider reconciliation
          </Text>
          <Reconciliation usage={key.providerUsage} mode={key.mode} />
        </Paper>
      </SimpleGrid>
      <Stack gap={4}>
        <Group justify="space-between">
          <Title order={2} size="h4">
            Leases on this key
          </Title>
          <Anchor component={Link} to={`/leases?keyId=${key.id}`} size="sm">
            All {formatTotal(data.leases.totalCount, data.leases.totalCountIsEstimate)} leases of this key →
          </Anchor>
        </Group>
        <DataTable
          withTableBorder
          borderRadius="sm"
          striped
          records={leases}
          idAccessor="id"
          minHeight={leases.length ? undefined : 120}
          noRecordsText="No lease has been granted on this key yet."
          columns={[
            { accessor: 'id', title: 'Lease', render: (l) => <LeaseLink id={l.id} /> },
            { accessor: 'status', render: (l) => <LeaseStatusBadge status={l.status} /> },
            { accessor: 'user', render: (l) => <UserLink id={l.user.id} /> },
            { accessor: 'agentId', title: 'Agent', render: (l) => l.agentId ?? '—' },
            {
              accessor: 'usage',
              title: 'Spend / cap',
              render: (l) => <SpendBar spent={l.usageUsd} limit={l.spendCapUsd} window="cap" compact />,
            },
            { accessor: 'grantedAt', title: 'Granted', render: (l) => <RelativeTime value={l.grantedAt} size="sm" /> },
          ]}
        />
      </Stack>
      {key.mode === 'MINT' && (
        <ProviderJobsTable jobsOf={jobs} canRetry={canAdminister(me.role)} showLease goTo={jobPaging.goTo} />
      )}
      <Stack gap={4}>
        <Group justify="space-between">
          <Title order={2} size="h4">
            Audit trail
          </Title>
          <Anchor component={Link} to={`/audit?targetId=${key.id}`} size="sm">
            Full audit trail →
          </Anchor>
        </Group>
        <DataTable
          withTableBorder
          borderRadius="sm"
          records={data.auditLog.edges.map((e) => e.node)}
          idAccessor="id"
          minHeight={data.auditLog.edges.length ? undefined : 120}
          noRecordsText="Nothing recorded yet."
          columns={[
            { accessor: 'at', title: 'When', noWrap: true, render: (e) => <RelativeTime value={e.at} size="sm" /> },
            {
              accessor: 'actorId',
              title: 'Who',
              render: (e) => (
                <Text span size="sm">
                  {e.actorId}{' '}
                  <Badge size="xs" variant="light">
                    {e.actorRole}
                  </Badge>
                </Text>
              ),
            },
            { accessor: 'action', render: (e) => <Code>{e.action}</Code> },
            { accessor: 'details', title: 'Changes', render: (e) => <AuditDetails details={e.details} /> },
          ]}
        />
      </Stack>
    </Stack>
  );
}
