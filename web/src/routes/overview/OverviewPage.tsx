// The pool at a glance: keys by status and provider, active leases by tier, spend today and this
// month against the summed limits, the keys close to a limit, 30 days of spend per provider, and
// the live feed of lease events; provider jobs that failed for good (minted keys), above all. Aggregates are asked again when events arrive, never on a timer.
import { Badge, Group, Paper, SimpleGrid, Stack, Table, Text } from '@mantine/core';
import { useDeferredValue, useMemo } from 'react';
import { useQuery } from 'urql';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { EventFeed } from '../../components/EventFeed';
import { FailingJobsAlert } from '../../components/FailingJobsAlert';
import { KeyLink } from '../../components/Links';
import { PageHeader } from '../../components/PageHeader';
import { PageLoader } from '../../components/PageLoader';
import { SpendBar } from '../../components/SpendBar';
import { SpendChart } from '../../components/SpendChart';
import { dark } from '../../components/StatusBadge';
import { useKeyUsage } from '../../components/useKeyUsage';
import { useLiveRefresh } from '../../components/useLiveRefresh';
import { graphql } from '../../gql';
import type { OverviewQuery } from '../../gql/graphql';
import { formatUsd, PROVIDER_NAMES } from '../../lib/format';

const OverviewDocument = graphql(`
  query Overview {
    poolSummary {
      keyCounts {
        provider
        status
        count
      }
      leaseCounts {
        tier
        status
        count
      }
      spendTodayUsd
      spendThisMonthUsd
      dailyLimitUsd
      monthlyLimitUsd
      keysWithoutDailyLimit
      keysWithoutMonthlyLimit
      nearLimitShare
      keysNearLimit {
        ...KeyRow
      }
    }
    openrouter: spendSeries(provider: OPENROUTER, days: 30) {
      day
      costUsd
    }
    venice: spendSeries(provider: VENICE, days: 30) {
      day
      costUsd
    }
    compatible: spendSeries(provider: OPENAI_COMPATIBLE, days: 30) {
      day
      costUsd
    }
  }
`);

type Summary = OverviewQuery['poolSummary'];
const PROVIDERS = ['OPENROUTER', 'VENICE', 'OPENAI_COMPATIBLE'] as const;
const NO_SERIES: { name: string; label: string; color: string; points: { day?: string | null; costUsd: string }[] }[] =
  [];
const TIERS = ['FREE', 'PRO', 'ENTERPRISE'] as const;

function Stat({ label, children, hint }: { label: string; children: React.ReactNode; hint?: React.ReactNode }) {
  return (
    <Paper withBorder p="md" radius="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600} mb={6}>
        {label}
      </Text>
      {children}
      {hint && (
        <Text size="xs" c="dimmed" mt={6}>
          {hint}
        </Text>
      )}
    </Paper>
  );
}

function KeysByProvider({ summary }: { summary: Summary }) {
  const count = (provider: string, status: string) =>
    summary.keyCounts.find((c) => c.provider === provider && c.status === status)?.count ?? 0;
  return (
    <Table withRowBorders={false} verticalSpacing={2} data-testid="keys-by-provider">
      <Table.Thead>
        <Table.Tr>
          <Table.Th />
          <Table.Th ta="right">active</Table.Th>
          <Table.Th ta="right">disabled</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {PROVIDERS.map((p) => (
          <Table.Tr key={p}>
            <Table.Td>
              <Text size="sm">{PROVIDER_NAMES[p]}</Text>
            </Table.Td>
            <Table.Td ta="right" ff="monospace">
              {count(p, 'ACTIVE')}
            </Table.Td>
            <Table.Td ta="right" ff="monospace" c="dimmed">
              {count(p, 'DISABLED')}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function LeasesByTier({ summary }: { summary: Summary }) {
  const count = (tier: string, status: string) =>
    summary.leaseCounts.find((c) => c.tier === tier && c.status === status)?.count ?? 0;
  return (
    <Stack gap={4} data-testid="leases-by-tier">
      {TIERS.map((tier) => (
        <Group key={tier} justify="space-between">
          <Text size="sm">{tier}</Text>
          <Group gap={6}>
            <Text size="sm" ff="monospace" fw={600}>
              {count(tier, 'ACTIVE')}
            </Text>
            {count(tier, 'SUSPENDED') > 0 && (
              <Badge size="xs" color={dark('orange')} variant="light">
                {count(tier, 'SUSPENDED')} suspended
              </Badge>
            )}
          </Group>
        </Group>
      ))}
    </Stack>
  );
}

export default function OverviewPage() {
  useKeyUsage();
  const [{ data, error }, refresh] = useQuery({ query: OverviewDocument });
  useLiveRefresh(
    () => refresh({ requestPolicy: 'network-only' }),
    (e) => e.type !== 'EXTENDED',
    3000,
  );
  const series = useMemo(
    () => [
      { name: 'openrouter', label: 'OpenRouter', color: 'indigo.6', points: data?.openrouter ?? [] },
      { name: 'venice', label: 'Venice', color: 'teal.6', points: data?.venice ?? [] },
      { name: 'compatible', label: 'OpenAI-compatible', color: 'orange.5', points: data?.compatible ?? [] },
    ],
    [data],
  );
  // The chart is the heaviest thing on the page: drawn in the background, after the figures.
  const deferredSeries = useDeferredValue(series, NO_SERIES);
  if (error && !data) return <ErrorNotice error={error} title="The overview could not be loaded" />;
  if (!data) return <PageLoader />;
  const summary = data.poolSummary;
  const totalKeys = summary.keyCounts.reduce((n, c) => n + c.count, 0);
  const activeLeases = summary.leaseCounts.filter((c) => c.status === 'ACTIVE').reduce((n, c) => n + c.count, 0);

  return (
    <Stack gap="md">
      <PageHeader title="Overview" description="The whole pool. Spend windows are the UTC day and the UTC month." />
      <FailingJobsAlert />
      <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
        <Stat label={`Keys (${totalKeys})`}>
          <KeysByProvider summary={summary} />
        </Stat>
        <Stat label={`Active leases (${activeLeases})`} hint="by the tier they were granted under">
          <LeasesByTier summary={summary} />
        </Stat>
        <Stat
          label="Spend today (UTC day)"
          hint={
            summary.keysWithoutDailyLimit
              ? `${summary.keysWithoutDailyLimit} active key(s) have no daily limit`
              : undefined
          }
        >
          <Text size="xl" fw={700} ff="monospace" data-testid="spend-today">
            {formatUsd(summary.spendTodayUsd)}
          </Text>
          <SpendBar spent={summary.spendTodayUsd} limit={summary.dailyLimitUsd} window="UTC day" />
        </Stat>
        <Stat
          label="Spend this month (UTC)"
          hint={
            summary.keysWithoutMonthlyLimit
              ? `${summary.keysWithoutMonthlyLimit} active key(s) have no monthly limit`
              : undefined
          }
        >
          <Text size="xl" fw={700} ff="monospace">
            {formatUsd(summary.spendThisMonthUsd)}
          </Text>
          <SpendBar spent={summary.spendThisMonthUsd} limit={summary.monthlyLimitUsd} window="UTC month" />
        </Stat>
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, lg: 3 }}>
        <Stack gap="md" style={{ gridColumn: 'span 2' }}>
          <Paper withBorder p="md" radius="md">
            <Text fw={600} size="sm" mb="xs">
              Daily spend by provider, last 30 UTC days
            </Text>
            <SpendChart series={deferredSeries} />
          </Paper>
          <Paper withBorder p="md" radius="md">
            <Text fw={600} size="sm" mb="xs">
              Keys at {Math.round(summary.nearLimitShare * 100)} % or more of a limit
            </Text>
            {summary.keysNearLimit.length === 0 ? (
              <EmptyState title="No key is close to a limit">
                Keys show here when their spend reaches {Math.round(summary.nearLimitShare * 100)} % of a daily or
                monthly limit.
              </EmptyState>
            ) : (
              <Table verticalSpacing="xs" data-testid="keys-near-limit">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Key</Table.Th>
                    <Table.Th>Provider</Table.Th>
                    <Table.Th>Today (UTC day)</Table.Th>
                    <Table.Th>This month (UTC)</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {summary.keysNearLimit.map((key) => (
                    <Table.Tr key={key.id}>
                      <Table.Td>
                        <KeyLink id={key.id} label={key.label} />
                      </Table.Td>
                      <Table.Td>{PROVIDER_NAMES[key.provider]}</Table.Td>
                      <Table.Td>
                        <SpendBar spent={key.spendTodayUsd} limit={key.dailyLimitUsd} window="UTC day" compact />
                      </Table.Td>
                      <Table.Td>
                        <SpendBar
                          spent={key.spendThisMonthUsd}
                          limit={key.monthlyLimitUsd}
                          window="UTC month"
                          compact
                        />
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
          </Paper>
        </Stack>
        <EventFeed height={560} />
      </SimpleGrid>
    </Stack>
  );
}
