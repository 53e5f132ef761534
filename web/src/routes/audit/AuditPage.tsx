// The audit trail: every admin and worker action, newest first, with what it changed. Filters
// (actor, action, target) and the page live in the URL, so a link shows the same entries.
import { Autocomplete, Button, Group, Stack, Text } from '@mantine/core';
import { IconSearch } from '@tabler/icons-react';
import type { DataTableSortStatus } from 'mantine-datatable';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useQuery } from 'urql';
import {
  ACTIONS,
  ActionBadge,
  AuditDetails,
  AuditTarget,
  TARGET_NAMES,
  TARGET_TYPES,
} from '../../components/AuditDetails';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { FilterSelect, TextFilter } from '../../components/FilterSelect';
import { UserLink } from '../../components/Links';
import { ListTable } from '../../components/ListTable';
import { PageHeader } from '../../components/PageHeader';
import { Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { RoleBadge } from '../../components/StatusBadge';
import { useLiveRefresh } from '../../components/useLiveRefresh';
import type { AuditRowFragment, EventItemFragment } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { pageVariables, useUrlFilters, useUrlText } from '../../lib/url';
import { AuditPageQuery } from './documents';

type Row = AuditRowFragment;
const FILTERS = ['actorId', 'action', 'targetType', 'targetId'] as const;

const SORTS: Record<string, (row: Row) => string | number> = {
  // Ids are serial: the server's newest-first order, exactly (several entries share a millisecond).
  at: (r) => r.id.padStart(20, '0'),
  actorId: (r) => r.actorId.toLowerCase(),
  action: (r) => r.action,
  target: (r) => `${r.targetType}|${r.targetId ?? ''}`,
};
const NEWEST: DataTableSortStatus<Row> = { columnAccessor: 'at', direction: 'desc' };

/**
 * Entries that arrived while the list was on screen (not those of a new page or filter) flash
 * once. Entries never change, so this is the audit trail's version of a row that changes.
 */
function useArrivals(rows: readonly Row[], scope: string | undefined): (row: Row) => string | undefined {
  const previous = useRef<{ scope: string | undefined; ids: Set<string> } | null>(null);
  const [fresh, setFresh] = useState<ReadonlySet<string>>(new Set());
  useEffect(() => {
    const before = previous.current;
    const ids = new Set(rows.map((r) => r.id));
    previous.current = { scope, ids };
    if (!before || before.scope !== scope || before.ids.size === 0) return;
    const added = [...ids].filter((id) => !before.ids.has(id));
    if (!added.length) return;
    setFresh((current) => new Set([...current, ...added]));
    const timer = setTimeout(
      () => setFresh((current) => new Set([...current].filter((id) => !added.includes(id)))),
      1200,
    );
    return () => clearTimeout(timer);
  }, [rows, scope]);
  return (row) => (fresh.has(row.id) ? 'mpk-flash-a' : undefined);
}

function Actor({ row }: { row: Row }) {
  const system = row.actorId.startsWith('system:');
  return (
    <Group gap={6} wrap="nowrap">
      {system ? (
        <Text span size="sm" fs="italic" title="MPK itself (a scheduled job or the metering proxy)">
          {row.actorId}
        </Text>
      ) : (
        <UserLink id={row.actorId} />
      )}
      {!system && <RoleBadge role={row.actorRole} size="xs" />}
    </Group>
  );
}

export default function AuditPage() {
  const filters = useUrlFilters(FILTERS);
  const { values } = filters;
  const action = useUrlText(values.action, (action) => filters.set({ action }));
  const [{ data, error, fetching, operation }, refetch] = useQuery({
    query: AuditPageQuery,
    variables: {
      ...pageVariables(filters.page),
      actorId: values.actorId ?? undefined,
      action: values.action ?? undefined,
      targetType: values.targetType ?? undefined,
      targetId: values.targetId ?? undefined,
    },
  });
  const rows = useMemo(() => (data?.auditLog.edges ?? []).map((e) => e.node), [data]);
  const arrived = useArrivals(rows, operation ? String(operation.key) : undefined);

  // Lease changes are audited: while the newest entries are on screen, a lease event brings them.
  const firstPage = !filters.page.after && !filters.page.before;
  const concerns = useCallback((e: EventItemFragment) => firstPage && e.type !== 'USAGE', [firstPage]);
  useLiveRefresh(() => refetch({ requestPolicy: 'network-only' }), concerns, 2000);

  const filtered = FILTERS.some((f) => values[f]);
  const refused = fieldErrors(error);
  const known = ACTIONS.flatMap((g) => g.items);
  const unknownAction = values.action && !known.includes(values.action);

  return (
    <Stack gap={0}>
      <PageHeader
        title="Audit"
        description={
          'Every admin and worker action, newest first: who did what to which key, lease, user or tier policy, ' +
          'and what it changed.'
        }
      />
      <Group gap="sm" mb="sm" wrap="wrap" align="flex-start">
        <TextFilter
          label="Actor"
          placeholder="Actor id (exact)"
          leftSection={<IconSearch size={16} />}
          value={values.actorId}
          onChange={(actorId) => filters.set({ actorId })}
          error={refused.actorId}
          width={200}
        />
        <Autocomplete
          aria-label="Action"
          placeholder="Any action"
          data={ACTIONS}
          value={action.text}
          onChange={action.change}
          onOptionSubmit={() => setTimeout(action.flush)}
          onKeyDown={(e) => e.key === 'Enter' && action.flush()}
          error={refused.action}
          limit={40}
          maxDropdownHeight={320}
          clearable
          w={220}
        />
        <FilterSelect
          label="Target type"
          placeholder="Any target"
          data={TARGET_TYPES.map((value) => ({ value, label: TARGET_NAMES[value] ?? value }))}
          value={values.targetType}
          onChange={(targetType) => filters.set({ targetType })}
          error={refused.targetType}
          width={150}
        />
        <TextFilter
          label="Target id"
          placeholder="Target id (exact)"
          value={values.targetId}
          onChange={(targetId) => filters.set({ targetId })}
          error={refused.targetId}
          width={240}
        />
        {filtered && (
          <Button
            variant="subtle"
            size="xs"
            mt={4}
            onClick={() => filters.set({ actorId: null, action: null, targetType: null, targetId: null })}
          >
            Clear filters
          </Button>
        )}
      </Group>
      {error && !FILTERS.some((f) => refused[f]) && (
        <ErrorNotice error={error} title="The audit trail could not be loaded" />
      )}
      <ListTable<Row>
        rows={rows}
        sorts={SORTS}
        defaultSort={NEWEST}
        rowClassName={arrived}
        verticalAlign="top"
        loading={fetching && !data}
        filtered={filtered}
        emptyFiltered={
          <EmptyState title="No entry matches these filters">
            {unknownAction ? `No entry has the action "${values.action}": pick one from the list. ` : ''}
            Actor and target ids must match exactly; clear a filter to see more.
          </EmptyState>
        }
        empty={
          <EmptyState title="Nothing audited yet">
            Every change an admin makes (keys, leases, tiers, users) and every lease a worker resolves is recorded here
            the moment it happens.
          </EmptyState>
        }
        columns={[
          {
            accessor: 'at',
            title: 'Time',
            sortable: true,
            noWrap: true,
            width: 120,
            render: (r) => <RelativeTime value={r.at} size="sm" />,
          },
          { accessor: 'actorId', title: 'Actor', sortable: true, noWrap: true, render: (r) => <Actor row={r} /> },
          { accessor: 'action', sortable: true, noWrap: true, render: (r) => <ActionBadge action={r.action} /> },
          {
            accessor: 'target',
            sortable: true,
            noWrap: true,
            render: (r) => (
              <AuditTarget
                type={r.targetType}
                id={r.targetId}
                label={
                  typeof (r.details as { label?: unknown })?.label === 'string'
                    ? (r.details as { label: string }).label
                    : undefined
                }
              />
            ),
          },
          {
            accessor: 'details',
            title: 'Changes',
            cellsStyle: () => ({ minWidth: 300 }),
            render: (r) => <AuditDetails details={r.details} />,
          },
        ]}
      />
      <Pager connection={data?.auditLog} shown={rows.length} goTo={filters.goTo} noun="entries" />
    </Stack>
  );
}
