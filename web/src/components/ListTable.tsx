// The dashboard's list tables: one look (bordered, striped, hover), the page on screen sorted by a
// column in the browser (the server pages newest first), changed rows flashing, and an empty
// state that says whether filters hide the rows or there are none yet.
import { DataTable, type DataTableColumn, type DataTableSortStatus } from 'mantine-datatable';
import { type ReactNode, useDeferredValue, useMemo, useState } from 'react';
import { sortRecords } from '../lib/sort';
import { FIRST_ROWS, useFlash } from './useFlash';

const NO_FLASH = { idOf: () => '', signatureOf: () => '' };
/** No column sorts the rows: they stay in the server's order. */
const UNSORTED = { columnAccessor: '', direction: 'asc' } as const;

export function ListTable<T extends { id: string }>({
  rows,
  columns,
  sorts,
  defaultSort,
  sortStatus: controlledSort,
  onSortStatusChange,
  loading,
  filtered = false,
  empty,
  emptyFiltered,
  flash,
  rowClassName,
  rowAttributes,
  live = false,
  verticalSpacing,
  verticalAlign,
}: {
  rows: readonly T[];
  columns: DataTableColumn<T>[];
  /** The sort key of each sortable column, by accessor. */
  sorts?: Record<string, (row: T) => string | number>;
  /** The first sort of a table that keeps its own; or pass sortStatus and onSortStatusChange. */
  defaultSort?: DataTableSortStatus<T>;
  sortStatus?: DataTableSortStatus<T>;
  onSortStatusChange?: (status: DataTableSortStatus<T>) => void;
  loading: boolean;
  filtered?: boolean;
  empty: ReactNode;
  /** Shown instead of `empty` when filters are set. */
  emptyFiltered?: ReactNode;
  /** Rows whose signature changes while on screen flash (see useFlash). */
  flash?: { idOf: (row: T) => string; signatureOf: (row: T) => string };
  rowClassName?: (row: T) => string | undefined;
  rowAttributes?: (row: T) => Record<string, unknown>;
  /**
   * A live table renders changes in the background (time-sliced), so that they never block input;
   * on a first load its top rows render at once and the rest follow in the background.
   */
  live?: boolean;
  verticalSpacing?: number;
  verticalAlign?: 'top' | 'center' | 'bottom';
}) {
  const [ownSort, setOwnSort] = useState<DataTableSortStatus<T>>(defaultSort ?? UNSORTED);
  const sortStatus = controlledSort ?? ownSort;
  const deferred = useDeferredValue(rows);
  const shown = !live ? rows : deferred.length === 0 ? rows.slice(0, FIRST_ROWS) : deferred;
  const sorted = useMemo(
    () => (sorts ? sortRecords(shown, sorts, sortStatus) : [...shown]),
    [shown, sorts, sortStatus],
  );
  const flashed = useFlash<T>(shown, (flash ?? NO_FLASH).idOf, (flash ?? NO_FLASH).signatureOf);
  return (
    <DataTable<T>
      withTableBorder
      borderRadius="sm"
      striped
      highlightOnHover
      verticalSpacing={verticalSpacing}
      verticalAlign={verticalAlign}
      minHeight={shown.length ? undefined : 220}
      fetching={loading}
      records={sorted}
      idAccessor="id"
      rowClassName={flash ? flashed : rowClassName}
      customRowAttributes={rowAttributes}
      sortStatus={sortStatus}
      onSortStatusChange={onSortStatusChange ?? setOwnSort}
      emptyState={filtered && emptyFiltered ? emptyFiltered : empty}
      columns={columns}
    />
  );
}
