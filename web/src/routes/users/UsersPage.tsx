// Every user MPK knows: their role and tier, the agents they run against their tier's limit, and
// what their leases spent this UTC month. Admins move users between tiers.
import { Button, Group, Select, Stack, Text } from '@mantine/core';
import { IconSearch } from '@tabler/icons-react';
import type { DataTableSortStatus } from 'mantine-datatable';
import { useCallback, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { FilterSelect, TextFilter } from '../../components/FilterSelect';
import { UserLink } from '../../components/Links';
import { ListTable } from '../../components/ListTable';
import { Money } from '../../components/Money';
import { PageHeader } from '../../components/PageHeader';
import { Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { ROLES, RoleBadge, TIER_COLORS, TIERS, TierBadge } from '../../components/StatusBadge';
import { useLiveRefresh } from '../../components/useLiveRefresh';
import type { EventItemFragment, Role, Tier, UserRowFragment } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { describePolicy, type PolicyTerms } from '../../lib/policy';
import { canAdminister } from '../../lib/roles';
import { pageVariables, useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';
import { UsersPageQuery } from './documents';
import { SetTierModal } from './SetTierModal';

type Row = UserRowFragment;
const FILTERS = ['search', 'tier', 'role'] as const;

const SORTS: Record<string, (row: Row) => string | number> = {
  id: (r) => r.id.toLowerCase(),
  email: (r) => (r.email ?? '\uffff').toLowerCase(),
  role: (r) => ROLES.indexOf(r.role),
  tier: (r) => TIERS.indexOf(r.tier),
  activeLeaseCount: (r) => r.activeLeaseCount,
  spendThisMonthUsd: (r) => Number(r.spendThisMonthUsd),
  createdAt: (r) => r.createdAt,
};

/** Rows flash when the tier, the agents or the month's spend change. */
const USER_FLASH = {
  idOf: (r: Row) => r.id,
  signatureOf: (r: Row) => `${r.tier}|${r.activeLeaseCount}|${r.spendThisMonthUsd}`,
};

function TierSelect({ user, onPick }: { user: Row; onPick: (tier: Tier) => void }) {
  return (
    <Select
      aria-label={`Tier of ${user.id}`}
      size="xs"
      w={128}
      data={TIERS as Tier[]}
      value={user.tier}
      allowDeselect={false}
      checkIconPosition="right"
      leftSection={
        <span
          aria-hidden
          style={{
            width: 8,
            height: 8,
            borderRadius: 8,
            background: `var(--mantine-color-${TIER_COLORS[user.tier]}-6)`,
          }}
        />
      }
      leftSectionWidth={24}
      onChange={(tier) => tier && tier !== user.tier && onPick(tier as Tier)}
      comboboxProps={{ withinPortal: true }}
    />
  );
}

type Policies = Map<Tier, PolicyTerms>;

function UsersTable({
  rows,
  sortStatus,
  onSortStatusChange,
  loading,
  filtered,
  admin,
  policies,
  onPick,
}: {
  rows: Row[];
  sortStatus: DataTableSortStatus<Row>;
  onSortStatusChange: (status: DataTableSortStatus<Row>) => void;
  loading: boolean;
  filtered: boolean;
  admin: boolean;
  policies: Policies;
  onPick: (user: Row, tier: Tier) => void;
}) {
  return (
    <ListTable<Row>
      rows={rows}
      sorts={SORTS}
      sortStatus={sortStatus}
      onSortStatusChange={onSortStatusChange}
      flash={USER_FLASH}
      loading={loading}
      filtered={filtered}
      emptyFiltered={
        <EmptyState title="No user matches these filters">
          Search for part of an id or email, or clear a filter.
        </EmptyState>
      }
      empty={
        <EmptyState title="No users yet">
          A user appears here the first time they call MPK with a token, for example when they ask for a lease.
          {admin ? ' You can change their tier from then on.' : ''}
        </EmptyState>
      }
      columns={[
        { accessor: 'id', title: 'User', sortable: true, noWrap: true, render: (r) => <UserLink id={r.id} fw={500} /> },
        {
          accessor: 'email',
          sortable: true,
          render: (r) =>
            r.email ? (
              <Text span size="sm">
                {r.email}
              </Text>
            ) : (
              <Text span size="sm" c="dimmed">
                —
              </Text>
            ),
        },
        { accessor: 'role', sortable: true, render: (r) => <RoleBadge role={r.role} /> },
        {
          accessor: 'tier',
          sortable: true,
          render: (r) =>
            admin ? (
              <TierSelect user={r} onPick={(tier) => onPick(r, tier)} />
            ) : (
              <span title={policies.get(r.tier) ? describePolicy(policies.get(r.tier)!) : undefined}>
                <TierBadge tier={r.tier} />
              </span>
            ),
        },
        {
          accessor: 'activeLeaseCount',
          title: 'Active leases',
          sortable: true,
          textAlign: 'right',
          render: (r) => {
            const max = policies.get(r.tier)?.maxActiveLeases;
            const full = max !== undefined && r.activeLeaseCount >= max;
            return (
              <Text
                span
                size="sm"
                ff="monospace"
                fw={full ? 700 : undefined}
                title={
                  full ? `at the ${r.tier} limit: no further agent until one ends` : `active leases / ${r.tier} limit`
                }
              >
                {r.activeLeaseCount} / {max ?? '?'}
              </Text>
            );
          },
        },
        {
          accessor: 'spendThisMonthUsd',
          title: 'Spend (UTC month)',
          sortable: true,
          textAlign: 'right',
          render: (r) => <Money value={r.spendThisMonthUsd} size="sm" />,
        },
        {
          accessor: 'createdAt',
          title: 'First seen',
          sortable: true,
          noWrap: true,
          render: (r) => <RelativeTime value={r.createdAt} size="sm" />,
        },
      ]}
    />
  );
}

export default function UsersPage() {
  const me = useMe();
  const admin = canAdminister(me.role);
  const filters = useUrlFilters(FILTERS);
  const [pending, setPending] = useState<{ user: Row; tier: Tier } | null>(null);
  const [sortStatus, setSortStatus] = useState<DataTableSortStatus<Row>>({
    columnAccessor: 'createdAt',
    direction: 'desc',
  });
  const tierFilter = filters.values.tier as Tier | null;
  const roleFilter = filters.values.role as Role | null;
  const [{ data, error, fetching, operation }, refetch] = useQuery({
    query: UsersPageQuery,
    variables: {
      ...pageVariables(filters.page),
      filter: {
        search: filters.values.search ?? undefined,
        tier: tierFilter ?? undefined,
        role: roleFilter ?? undefined,
      },
    },
  });
  const rows = useMemo(() => (data?.users.edges ?? []).map((e) => e.node), [data]);
  const policies = useMemo(() => new Map((data?.tierPolicies ?? []).map((p) => [p.tier, p])), [data]);

  // Lease counts and spend change with every lease event of a user on screen: ask again.
  const onScreen = useMemo(() => new Set(rows.map((r) => r.id)), [rows]);
  const concerns = useCallback((e: EventItemFragment) => onScreen.has(e.userId), [onScreen]);
  useLiveRefresh(() => refetch({ requestPolicy: 'network-only' }), concerns, 2000);

  const filtered = Boolean(filters.values.search || tierFilter || roleFilter);
  const refused = fieldErrors(error);

  return (
    <Stack gap={0}>
      <PageHeader
        title="Users"
        description={
          admin
            ? "Everyone MPK has seen, with their agents against their tier's limit and their leases' spend " +
              'this UTC month. Change a tier in its column.'
            : "Everyone MPK has seen, with their agents against their tier's limit and their leases' spend " +
              'this UTC month.'
        }
      />
      <Group gap="sm" mb="sm" wrap="wrap">
        <TextFilter
          label="Search users"
          placeholder="Search by id or email"
          leftSection={<IconSearch size={16} />}
          value={filters.values.search}
          onChange={(search) => filters.set({ search })}
          error={refused.search ?? refused.filter}
          width={280}
        />
        <FilterSelect
          label="Tier"
          data={TIERS}
          value={tierFilter}
          onChange={(tier) => filters.set({ tier })}
          width={160}
        />
        <FilterSelect
          label="Role"
          data={ROLES}
          value={roleFilter}
          onChange={(role) => filters.set({ role })}
          width={160}
        />
        {filtered && (
          <Button variant="subtle" size="xs" onClick={() => filters.set({ search: null, tier: null, role: null })}>
            Clear filters
          </Button>
        )}
      </Group>
      {error && !(refused.search ?? refused.filter) && <ErrorNotice error={error} title="Users could not be loaded" />}
      <UsersTable
        // A new page or filter is a new table: only rows that change while on screen flash.
        key={operation?.key ?? 'loading'}
        rows={rows}
        sortStatus={sortStatus}
        onSortStatusChange={setSortStatus}
        loading={fetching && !data}
        filtered={filtered}
        admin={admin}
        policies={policies}
        onPick={(user, tier) => setPending({ user, tier })}
      />
      <Pager connection={data?.users} shown={rows.length} goTo={filters.goTo} noun="users" />
      {admin && pending && (
        <SetTierModal
          user={pending.user}
          tier={pending.tier}
          policy={policies.get(pending.tier)}
          onClose={() => setPending(null)}
          // A filtered list may no longer hold the user: ask again.
          onDone={() => filtered && refetch({ requestPolicy: 'network-only' })}
        />
      )}
    </Stack>
  );
}
