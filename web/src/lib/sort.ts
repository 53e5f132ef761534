// Sorting the rows of the page on screen by a column (the lists page newest first on the server).
import type { DataTableSortStatus } from 'mantine-datatable';

export function sortRecords<T>(
  rows: readonly T[],
  sorts: Record<string, (row: T) => string | number>,
  status: DataTableSortStatus<T>,
): T[] {
  const key = sorts[String(status.columnAccessor)];
  if (!key) return [...rows];
  const sign = status.direction === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -sign : x > y ? sign : 0;
  });
}
