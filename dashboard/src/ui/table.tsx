// Sortable tables on @tanstack/table-core (headless: the sorting, not the markup). Headers are
// buttons that announce their order (aria-sort); a page passes its rows already filtered.
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { createTable, getCoreRowModel, getSortedRowModel, type ColumnDef, type SortingState, type TableOptionsResolved } from '@tanstack/table-core';

export interface Column<T> {
  id: string;
  header: string;
  /** The value sorted by (and shown, unless `cell` says otherwise). */
  value: (row: T) => string | number | boolean | null | undefined;
  cell?: (row: T) => ComponentChildren;
  sortable?: boolean;
  /** Sort descending on the first click (numbers such as CPU or memory). */
  descFirst?: boolean;
  class?: string;
}

export function SortableTable<T>({ rows, columns, rowKey, caption, initialSort, empty, class: cls }: {
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
  caption: string;
  initialSort?: SortingState;
  empty?: ComponentChildren;
  /** On the <table>: "cards" stacks each row as a card under 600 px. */
  class?: string;
}) {
  const [sorting, setSorting] = useState<SortingState>(initialSort ?? []);
  const defs = useMemo<ColumnDef<T, unknown>[]>(
    () =>
      columns.map((c) => ({
        id: c.id,
        accessorFn: (r: T) => c.value(r) ?? '',
        enableSorting: c.sortable !== false,
        sortDescFirst: c.descFirst ?? false,
        sortingFn: 'auto' as const,
      })),
    [columns],
  );
  const table = useMemo(
    () =>
      createTable<T>({
        data: [],
        columns: defs,
        state: {},
        onStateChange: () => {},
        renderFallbackValue: null,
        getCoreRowModel: getCoreRowModel(),
        getSortedRowModel: getSortedRowModel(),
      } as TableOptionsResolved<T>),
    [defs],
  );
  table.setOptions((prev) => ({
    ...prev,
    data: rows,
    columns: defs,
    getRowId: (r: T) => rowKey(r),
    state: { ...table.initialState, sorting },
    onSortingChange: (u) => setSorting((old) => (typeof u === 'function' ? u(old) : u)),
  }));
  const byId = new Map(columns.map((c) => [c.id, c]));
  const sorted = table.getRowModel().rows;
  return (
    <div class="table-wrap">
      <table class={cls}>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {table.getFlatHeaders().map((h) => {
              const col = byId.get(h.column.id)!;
              const dir = h.column.getIsSorted();
              return (
                <th key={h.id} scope="col" class={col.class} aria-sort={dir === 'asc' ? 'ascending' : dir === 'desc' ? 'descending' : undefined}>
                  {h.column.getCanSort() ? (
                    <button type="button" class="sort" onClick={h.column.getToggleSortingHandler()}>
                      {col.header}
                      <span aria-hidden="true" class="sort-mark">
                        {dir === 'asc' ? '▲' : dir === 'desc' ? '▼' : '↕'}
                      </span>
                    </button>
                  ) : (
                    col.header
                  )}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {sorted.length === 0 && empty ? (
            <tr>
              <td colSpan={columns.length}>{empty}</td>
            </tr>
          ) : (
            sorted.map((r) => (
              <tr key={rowKey(r.original)}>
                {columns.map((c) => (
                  <td key={c.id} class={c.class} data-label={c.header}>
                    {c.cell ? c.cell(r.original) : String(c.value(r.original) ?? '')}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
