// Every lease, newest first, filtered by status, tier, provider, framework, key, user and agent
// (all kept in the URL). Live: a lease granted anywhere appears at the top of the first page, and
// an ended or suspended lease changes in place, without a reload.
import { Badge, CloseButton, Group, Stack } from '@mantine/core';
import type { DataTableSortStatus } from 'mantine-datatable';
import { memo, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { LeaseListQuery } from '../../api/documents';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { FilterSelect, TextFilter } from '../../components/FilterSelect';
import { KeyLink, LeaseLink, UserLink } from '../../components/Links';
import { ListTable } from '../../components/ListTable';
import { PageHeader } from '../../components/PageHeader';
import { Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { SpendBar } from '../../components/SpendBar';
import { LeaseStatusBadge } from '../../components/StatusBadge';
import { useLiveData } from '../../components/useLiveData';
import type {
  Framework,
  LeaseListQueryVariables,
  LeaseRowFragment,
  LeaseStatus,
  Provider,
  Tier,
} from '../../gql/graphql';
import { FRAMEWORK_NAMES, FRAMEWORK_SHORT, optionsOf, PROVIDER_NAMES, share, shortId } from '../../lib/format';
import { canAdminister } from '../../lib/roles';
import { pageVariables, useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';
import { RevokeModal } from './LeaseActions';
import classes from './LeasesPage.module.css';

const FILTERS = ['status', 'tier', 'provider', 'framework', 'keyId', 'userId', 'agentId'] as const;

const SORTS: Record<string, (l: LeaseRowFragment) => string | number> = {
  status: (l) => l.status,
  user: (l) => l.user.id,
  agentId: (l) => l.agentId ?? '',
  key: (l) => l.key?.label ?? '',
  tier: (l) => l.tier,
  spend: (l) => share(l.usageUsd, l.spendCapUsd) ?? 0,
  requestCount: (l) => l.requestCount,
  grantedAt: (l) => l.grantedAt,
  expiresAt: (l) => l.endedAt ?? l.expiresAt,
};

interface ResultsProps {
  variables: LeaseListQueryVariables;
  admin: boolean;
  filtered: boolean;
  goTo: (page: { after?: string | null; before?: string | null }) => void;
}

/** The table, live: the query re-renders this on every change, the table at most every 250 ms. */
const LeaseResults = memo(function LeaseResults({ variables, admin, filtered, goTo }: ResultsProps) {
  const [{ data: latest, error, fetching }] = useQuery({ query: LeaseListQuery, variables });
  const data = useLiveData(latest);
  const [revoking, setRevoking] = useState<LeaseRowFragment | null>(null);
  const rows = useMemo(() => (data?.leases.edges ?? []).map((e) => e.node), [data]);
  return (
    <>
      {error && <ErrorNotice error={error} title="Leases could not be loaded" />}
      <LeaseTable rows={rows} admin={admin} filtered={filtered} loading={fetching && !data} onRevoke={setRevoking} />
      <Pager connection={data?.leases} shown={rows.length} goTo={goTo} noun="leases" />
      {revoking && <RevokeModal lease={revoking} onClose={() => setRevoking(null)} />}
    </>
  );
});

/** Rows flash when their status, spend, expiry or cap changes. */
const LEASE_FLASH = {
  idOf: (l: LeaseRowFragment) => l.id,
  signatureOf: (l: LeaseRowFragment) => `${l.status}|${l.usageUsd}|${l.expiresAt}|${l.spendCapUsd}`,
};
const NEWEST: DataTableSortStatus<LeaseRowFragment> = { columnAccessor: 'grantedAt', direction: 'desc' };

const LeaseTable = memo(function LeaseTable({
  rows,
  admin,
  filtered,
  loading,
  onRevoke,
}: {
  rows: LeaseRowFragment[];
  admin: boolean;
  filtered: boolean;
  loading: boolean;
  onRevoke: (lease: LeaseRowFragment) => void;
}) {
  return (
    <ListTable<LeaseRowFragment>
      rows={rows}
      live
      sorts={SORTS}
      defaultSort={NEWEST}
      flash={LEASE_FLASH}
      verticalSpacing={6}
      loading={loading}
      filtered={filtered}
      rowAttributes={(l) => ({ 'data-lease-id': l.id, 'data-status': l.status })}
      emptyFiltered={<EmptyState title="No lease matches these filters">Clear a filter to see more.</EmptyState>}
      empty={
        <EmptyState title="No leases yet">
          Leases appear here the moment a user picks the shared provider for an agent.
        </EmptyState>
      }
      columns={[
        { accessor: 'id', title: 'Lease', render: (l) => <LeaseLink id={l.id} /> },
        { accessor: 'status', sortable: true, noWrap: true, render: (l) => <LeaseStatusBadge status={l.status} /> },
        {
          accessor: 'user',
          title: 'User · tier',
          sortable: true,
          noWrap: true,
          render: (l) => (
            <>
              <UserLink id={l.user.id} /> <span className={classes.dim}>· {l.tier}</span>
            </>
          ),
        },
        { accessor: 'agentId', title: 'Agent', sortable: true, noWrap: true, render: (l) => l.agentId ?? '—' },
        {
          accessor: 'key',
          title: 'Key',
          sortable: true,
          noWrap: true,
          render: (l) => (l.key ? <KeyLink id={l.key.id} label={l.key.label} /> : '—'),
        },
        {
          accessor: 'framework',
          noWrap: true,
          render: (l) => (
            <span title={`${PROVIDER_NAMES[l.provider]} · ${FRAMEWORK_NAMES[l.framework]}`}>
              {FRAMEWORK_SHORT[l.framework]}
            </span>
          ),
        },
        {
          accessor: 'spend',
          title: 'Spend / cap',
          sortable: true,
          render: (l) => <SpendBar spent={l.usageUsd} limit={l.spendCapUsd} window="cap" compact />,
        },
        { accessor: 'requestCount', title: 'Req.', titleClassName: classes.nowrap, sortable: true, textAlign: 'right' },
        {
          accessor: 'grantedAt',
          title: 'Granted',
          sortable: true,
          noWrap: true,
          render: (l) => <RelativeTime value={l.grantedAt} size="sm" />,
        },
        {
          accessor: 'expiresAt',
          title: 'Ends',
          sortable: true,
          noWrap: true,
          render: (l) => (
            <RelativeTime value={l.endedAt ?? l.expiresAt} size="sm" c={l.endedAt ? 'dimmed' : undefined} />
          ),
        },
        ...(admin
          ? [
              {
                accessor: 'actions',
                title: '',
                render: (l: LeaseRowFragment) =>
                  l.status === 'ACTIVE' || l.status === 'SUSPENDED' ? (
                    <CloseButton
                      size="sm"
                      aria-label={`Revoke lease ${shortId(l.id)}`}
                      title="Revoke"
                      onClick={() => onRevoke(l)}
                    />
                  ) : null,
              },
            ]
          : []),
      ]}
    />
  );
});

const LeaseFilters = memo(function LeaseFilters({
  values: f,
  set,
}: {
  values: Record<(typeof FILTERS)[number], string | null>;
  set: (changes: Partial<Record<(typeof FILTERS)[number], string | null>>) => void;
}) {
  return (
    <Group gap="sm" mb="sm" wrap="wrap">
      <FilterSelect
        label="Status"
        data={['ACTIVE', 'SUSPENDED', 'EXPIRED', 'RELEASED', 'REVOKED']}
        value={f.status}
        onChange={(status) => set({ status })}
        width={150}
      />
      <FilterSelect
        label="Tier"
        data={['FREE', 'PRO', 'ENTERPRISE']}
        value={f.tier}
        onChange={(tier) => set({ tier })}
        width={140}
      />
      <FilterSelect
        label="Provider"
        data={optionsOf(PROVIDER_NAMES)}
        value={f.provider}
        onChange={(provider) => set({ provider })}
        width={180}
      />
      <FilterSelect
        label="Framework"
        data={optionsOf(FRAMEWORK_NAMES)}
        value={f.framework}
        onChange={(framework) => set({ framework })}
        width={200}
      />
      <TextFilter label="User id" value={f.userId} onChange={(userId) => set({ userId })} />
      <TextFilter label="Agent id" value={f.agentId} onChange={(agentId) => set({ agentId })} />
      {f.keyId && (
        <Badge
          variant="light"
          size="lg"
          rightSection={<CloseButton size="xs" aria-label="Clear key filter" onClick={() => set({ keyId: null })} />}
        >
          key {shortId(f.keyId)}
        </Badge>
      )}
    </Group>
  );
});

export default function LeasesPage() {
  const me = useMe();
  const filters = useUrlFilters(FILTERS);
  const f = filters.values;
  const { after, before } = filters.page;
  const variables = useMemo<LeaseListQueryVariables>(
    () => ({
      ...pageVariables({ after, before }),
      status: (f.status as LeaseStatus | null) ?? undefined,
      tier: (f.tier as Tier | null) ?? undefined,
      provider: (f.provider as Provider | null) ?? undefined,
      framework: (f.framework as Framework | null) ?? undefined,
      keyId: f.keyId ?? undefined,
      userId: f.userId ?? undefined,
      agentId: f.agentId ?? undefined,
    }),
    [f, after, before],
  );

  return (
    <Stack gap={0}>
      <PageHeader
        title="Leases"
        description="Newest first. New leases appear at the top and ended ones change in place, as they happen."
      />
      <LeaseFilters values={f} set={filters.set} />
      <LeaseResults
        variables={variables}
        admin={canAdminister(me.role)}
        filtered={FILTERS.some((k) => f[k])}
        goTo={filters.goTo}
      />
    </Stack>
  );
}
