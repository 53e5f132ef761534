// Filters and paging kept in the URL: a reload or a shared link shows the same list.
import { useDebouncedCallback } from '@mantine/hooks';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';

export interface UrlFilters<K extends string> {
  values: Record<K, string | null>;
  /** Sets some filters (null clears) and starts again from the first page. */
  set(changes: Partial<Record<K, string | null>>): void;
  /** The paging cursor in the URL: `after` pages forward, `before` backward. */
  page: { after: string | null; before: string | null };
  goTo(page: { after?: string | null; before?: string | null }): void;
}

export function useUrlFilters<K extends string>(keys: readonly K[]): UrlFilters<K> {
  const [params, setParams] = useSearchParams();
  const values = useMemo(
    () => Object.fromEntries(keys.map((k) => [k, params.get(k)])) as Record<K, string | null>,
    [params, keys],
  );
  const set = useCallback(
    (changes: Partial<Record<K, string | null>>) =>
      setParams((current) => {
        const next = new URLSearchParams(current);
        for (const [key, value] of Object.entries(changes) as [K, string | null][]) {
          if (value) next.set(key, value);
          else next.delete(key);
        }
        next.delete('after');
        next.delete('before');
        return next;
      }),
    [setParams],
  );
  const goTo = useCallback(
    (page: { after?: string | null; before?: string | null }) =>
      setParams((current) => {
        const next = new URLSearchParams(current);
        next.delete('after');
        next.delete('before');
        if (page.after) next.set('after', page.after);
        if (page.before) next.set('before', page.before);
        return next;
      }),
    [setParams],
  );
  return { values, set, page: { after: params.get('after'), before: params.get('before') }, goTo };
}

/** Page variables for a list query from the URL's cursor. */
export function pageVariables(page: { after: string | null; before: string | null }, size = 50) {
  return page.before ? { last: size, before: page.before } : { first: size, after: page.after };
}

/**
 * A text filter kept in the URL: typing updates the field at once and the URL (hence the query)
 * after a pause; a URL changed from elsewhere (back, a link, "clear filters") refills the field.
 */
export function useUrlText(value: string | null, commit: (value: string | null) => void, wait = 350) {
  const [text, setText] = useState(value ?? '');
  const committed = useRef(value ?? '');
  const debounced = useDebouncedCallback((next: string) => {
    committed.current = next.trim();
    commit(next.trim() || null);
  }, wait);

  useEffect(() => {
    const current = value ?? '';
    if (current === committed.current) return;
    committed.current = current;
    debounced.cancel();
    setText(current);
  }, [value, debounced]);

  return {
    text,
    /** For onChange: the field now, the URL after the pause. */
    change(next: string) {
      setText(next);
      debounced(next);
    },
    /** For Enter / an option picked: the URL now. */
    flush() {
      debounced.flush();
    },
  };
}
