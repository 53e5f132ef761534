// A time as "in 3 h" / "5 min ago", the absolute UTC time on hover, kept fresh by one shared
// ticker. A plain <time> element: tables show dozens of these.
import { type CSSProperties, memo, useSyncExternalStore } from 'react';
import { formatAbsolute, formatRelative } from '../lib/format';

let now = Date.now();
const listeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | undefined;

function subscribe(listener: () => void) {
  listeners.add(listener);
  timer ??= setInterval(() => {
    now = Date.now();
    for (const l of listeners) l();
  }, 15_000);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** Re-renders every 15 s, for everything that shows relative times. */
export const useNow = () => useSyncExternalStore(subscribe, () => now);

const SIZES = {
  xs: 'var(--mantine-font-size-xs)',
  sm: 'var(--mantine-font-size-sm)',
  md: 'var(--mantine-font-size-md)',
} as const;

export const RelativeTime = memo(function RelativeTime({
  value,
  fallback = '—',
  size,
  c,
  fw,
  ml,
}: {
  value: string | null | undefined;
  fallback?: string;
  size?: keyof typeof SIZES;
  c?: 'dimmed';
  fw?: number;
  ml?: 'auto';
}) {
  useNow();
  const style: CSSProperties = {
    fontSize: size ? SIZES[size] : undefined,
    color: c === 'dimmed' || !value ? 'var(--mantine-color-dimmed)' : undefined,
    fontWeight: fw,
    marginLeft: ml,
    whiteSpace: 'nowrap',
  };
  if (!value) return <span style={style}>{fallback}</span>;
  // The text uses the time of this render; the ticker only makes the render happen.
  return (
    <time dateTime={value} title={formatAbsolute(value)} style={style}>
      {formatRelative(value, Date.now())}
    </time>
  );
});
