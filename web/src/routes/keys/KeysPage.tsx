// The key pool: every key with its spend against its limits (UTC day and month), its load, and
// the provider's own figures; live through keyUsage. Admins add, edit, rotate, disable, enable.
// A MINT key shows its minted keys in use against their cap; provider jobs that failed for good
// anywhere in the pool are announced above the table.
import { Badge, Button, Group, Stack, Text, Tooltip } from '@mantine/core';
import { IconPlus } from '@tabler/icons-react';
import type { DataTableSortStatus } from 'mantine-datatable';
import { memo, useCallback, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { FailingJobsAlert } from '../../components/FailingJobsAlert';
import { FilterSelect } from '../../components/FilterSelect';
import { KeyLink } from '../../components/Links';
import { ListTable } from '../../components/ListTable';
import { Money } from '../../components/Money';
import { PageHeader } from '../../components/PageHeader';
import { Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { SpendBar } from '../../components/SpendBar';
import { dark, KeyModeBadge, KeyStatusBadge } from '../../components/StatusBadge';
import { useKeyUsage } from '../../components/useKeyUsage';
import { useLiveData } from '../../components/useLiveData';
import type {
  KeyFormFieldsFragment,
  KeyRowFragment,
  KeyStatus,
  KeysPageQueryVariables,
  Provider,
} from '../../gql/graphql';
import { optionsOf, PROVIDER_NAMES, share } from '../../lib/format';
import { canAdminister } from '../../lib/roles';
import { pageVariables, useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';
import { KeysPageQuery } from './documents';
import { KeyActions } from './KeyActions';
import { KeyFormModal } from './KeyFormModal';

type Row = KeyRowFragment & KeyFormFieldsFragment;
const FILTERS = ['provider', 'status'] as const;

const SORTS: Record<string, (row: Row) => string | number> = {
  label: (r) => r.label.toLowerCase(),
  provider: (r) => r.provider,
  status: (r) => r.status,
  today: (r) => share(r.spendTodayUsd, r.dailyLimitUsd) ?? Number(r.spendTodayUsd) / 1e9,
  month: (r) => share(r.spendThisMonthUsd, r.monthlyLimitUsd) ?? Number(r.spendThisMonthUsd) / 1e9,
  leases: (r) => r.activeLeaseCount,
  mode: (r) => `${r.mode}:${String(r.mintedKeyCount).padStart(9, '0')}`,
  lastUsedAt: (r) => r.lastUsedAt ?? '',
  drift: (r) => Math.abs(Number(r.providerUsage?.driftTodayUsd ?? 0)),
};

function Drift({ row }: { row: Row }) {
  const usage = row.providerUsage;
  if (row.mode === 'MINT')
    return (
      <Text span size="xs" c="dimmed" title="Each lease's own provider key is reconciled: see the lease's page">
        per lease
      </Text>
    );
  if (!usage)
    return (
      <Text span size="xs" c="dimmed" title="The provider has not been asked yet">
        —
      </Text>
    );
  if (usage.error) {
    return (
      <Tooltip label={usage.error} multiline w={280}>
        <Badge color={dark('orange')} variant="light" size="sm">
          check failed
        </Badge>
      </Tooltip>
    );
  }
  if (usage.driftTodayUsd == null)
    return (
      <Text span size="xs" c="dimmed" title="This provider reports a balance, not daily usage">
        n/a
      </Text>
    );
  return (
    <Money
      value={usage.driftTodayUsd}
      size="sm"
      c={Math.abs(Number(usage.driftTodayUsd)) >= 0.01 ? 'orange' : undefined}
    />
  );
}

/** SHARED, or MINT with its minted keys in use against their cap. */
function KeyModeCell({ row }: { row: Row }) {
  if (row.mode !== 'MINT') return <KeyModeBadge mode={row.mode} />;
  return (
    <Group gap={6} wrap="nowrap">
      <KeyModeBadge mode={row.mode} />
      <Text span size="sm" ff="monospace" title="minted keys in use / max">
        {row.mintedKeyCount} / {row.maxMintedKeys ?? '∞'}
      </Text>
    </Group>
  );
}

interface ResultsProps {
  variables: KeysPageQueryVariables;
  admin: boolean;
  filtered: boolean;
  onAdd: () => void;
  goTo: (page: { after?: string | null; before?: string | null }) => void;
}

/** The table, live: the query re-renders this on every change, the table at most every 250 ms. */
const KeyResults = memo(function KeyResults({ variables, admin, filtered, onAdd, goTo }: ResultsProps) {
  const [{ data: latest, error, fetching }] = useQuery({ query: KeysPageQuery, variables });
  const data = useLiveData(latest);
  const rows = useMemo(() => (data?.managedKeys.edges ?? []).map((e) => e.node as Row), [data]);
  return (
    <>
      {error && <ErrorNotice error={error} title="Keys could not be loaded" />}
      <KeyTable rows={rows} admin={admin} filtered={filtered} loading={fetching && !data} onAdd={onAdd} />
      <Pager connection={data?.managedKeys} shown={rows.length} goTo={goTo} noun="keys" />
    </>
  );
});

/** Rows flash when their spend, load or status changes. */
const KEY_FLASH = {
  idOf: (r: Row) => r.id,
  signatureOf: (r: Row) =>
    `${r.spendTodayUsd}|${r.spendThisMonthUsd}|${r.activeLeaseCount}|${r.mintedKeyCount}|${r.status}`,
};
const BY_LABEL: DataTableSortStatus<Row> = { columnAccessor: 'label', direction: 'asc' };

const KeyTable = memo(function KeyTable({
  rows,
  admin,
  filtered,
  loading,
  onAdd,
}: {
  rows: Row[];
  admin: boolean;
  filtered: boolean;
  loading: boolean;
  onAdd: () => void;
}) {
  return (
    <ListTable<Row>
      rows={rows}
      live
      sorts={SORTS}
      defaultSort={BY_LABEL}
      flash={KEY_FLASH}
      loading={loading}
      filtered={filtered}
      rowAttributes={(r) => ({ 'data-key-id': r.id })}
      emptyFiltered={
        <EmptyState title="No key matches these filters">Clear a filter to see more of the pool.</EmptyState>
      }
      empty={
        <EmptyState
          title="No keys yet — add your first provider key"
          action={
            admin && (
              <Button size="xs" onClick={onAdd}>
                Add key
              </Button>
            )
          }
        >
          {admin
            ? 'Users can lease a key as soon as the pool has one.'
            : 'An admin adds keys to the pool; they show here the moment one does.'}
        </EmptyState>
      }
      columns={[
        {
          accessor: 'label',
          sortable: true,
          noWrap: true,
          render: (r) => <KeyLink id={r.id} label={r.label} fw={500} />,
        },
        { accessor: 'provider', sortable: true, noWrap: true, render: (r) => PROVIDER_NAMES[r.provider] },
        {
          accessor: 'mode',
          sortable: true,
          noWrap: true,
          render: (r) => <KeyModeCell row={r} />,
        },
        {
          accessor: 'maskedKey',
          title: 'Key',
          noWrap: true,
          render: (r) => (
            <Text span ff="monospace" size="sm">
              {r.maskedKey}
            </Text>
          ),
        },
        {
          accessor: 'status',
          sortable: true,
          render: (r) => (
            <Tooltip label={r.disabledReason ?? ''} disabled={!r.disabledReason}>
              <span>
                <KeyStatusBadge status={r.status} />
              </span>
            </Tooltip>
          ),
        },
        {
          accessor: 'today',
          title: 'Today (UTC day)',
          sortable: true,
          render: (r) => <SpendBar spent={r.spendTodayUsd} limit={r.dailyLimitUsd} window="UTC day" compact />,
        },
        {
          accessor: 'month',
          title: 'This month (UTC)',
          sortable: true,
          render: (r) => <SpendBar spent={r.spendThisMonthUsd} limit={r.monthlyLimitUsd} window="UTC month" compact />,
        },
        {
          accessor: 'leases',
          title: 'Leases',
          sortable: true,
          textAlign: 'right',
          render: (r) => (
            <Text span size="sm" ff="monospace" title="active / max">
              {r.activeLeaseCount} / {r.maxActiveLeases ?? '∞'}
            </Text>
          ),
        },
        {
          accessor: 'lastUsedAt',
          title: 'Last used',
          sortable: true,
          noWrap: true,
          render: (r) => <RelativeTime value={r.lastUsedAt} fallback="never" size="sm" />,
        },
        { accessor: 'drift', title: 'Provider drift today', sortable: true, render: (r) => <Drift row={r} /> },
        ...(admin
          ? [{ accessor: 'actions', title: '', width: 48, render: (r: Row) => <KeyActions keyRow={r} form={r} /> }]
          : []),
      ]}
    />
  );
});

export default function KeysPage() {
  const me = useMe();
  const admin = canAdminister(me.role);
  useKeyUsage();
  const filters = useUrlFilters(FILTERS);
  const [adding, setAdding] = useState(false);
  const { provider, status } = filters.values;
  const { after, before } = filters.page;
  const variables = useMemo<KeysPageQueryVariables>(
    () => ({
      ...pageVariables({ after, before }),
      provider: (provider as Provider | null) ?? undefined,
      status: (status as KeyStatus | null) ?? undefined,
    }),
    [provider, status, after, before],
  );
  const add = useCallback(() => setAdding(true), []);

  return (
    <Stack gap={0}>
      <PageHeader
        title="Keys"
        description="The pool of provider keys. Spend windows are the UTC day and the UTC month; figures update live."
        actions={
          admin && (
            <Button leftSection={<IconPlus size={16} />} onClick={add}>
              Add key
            </Button>
          )
        }
      />
      <FailingJobsAlert />
      <Group gap="sm" mb="sm">
        <FilterSelect
          label="Provider"
          data={optionsOf(PROVIDER_NAMES)}
          value={provider}
          onChange={(next) => filters.set({ provider: next })}
          width={200}
        />
        <FilterSelect
          label="Status"
          data={['ACTIVE', 'DISABLED']}
          value={status}
          onChange={(next) => filters.set({ status: next })}
          width={160}
        />
      </Group>
      <KeyResults
        variables={variables}
        admin={admin}
        filtered={Boolean(provider || status)}
        onAdd={add}
        goTo={filters.goTo}
      />
      {admin && <KeyFormModal opened={adding} onClose={() => setAdding(false)} />}
    </Stack>
  );
}
