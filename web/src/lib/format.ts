// How amounts, times and shares read on the dashboard. Amounts arrive as exact decimal strings
// ("12.5", "0.000123"): tables round them to cents for reading, detail pages show them whole.
const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'narrow' });
const absolute = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' });

/** "in 3 h", "5 min ago": the largest unit that fits, rounded. */
export function formatRelative(iso: string | Date, now = Date.now()): string {
  const diff = new Date(iso).getTime() - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms || unit === 'second') return relative.format(Math.round(diff / ms), unit);
  }
  return relative.format(0, 'second');
}

/** "26 Nov 2026, 21:05:09 UTC". */
export const formatAbsolute = (iso: string | Date) => `${absolute.format(new Date(iso))} UTC`;

// One formatter for every amount: toLocaleString builds a new one per call, which a live table
// calling it hundreds of times a second cannot afford.
const cents = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const grouped = new Intl.NumberFormat('en-US');

/** A USD amount with two decimals (a table's view): "$12.50"; a tiny non-zero one reads "<$0.01". */
export function formatUsd(value: string | null | undefined): string {
  if (value == null) return '—';
  const n = Number(value);
  const sign = n < 0 ? '-' : '';
  if (n !== 0 && Math.abs(n) < 0.005) return `${sign}<$0.01`;
  return `${sign}$${cents.format(Math.abs(n))}`;
}

/** A USD amount exactly as the server sent it (a detail page's view): "$0.000123". */
export function formatUsdExact(value: string | null | undefined): string {
  if (value == null) return '—';
  const negative = value.startsWith('-');
  const [whole = '0', fraction = ''] = value.replace(/^-/, '').split('.');
  return `${negative ? '-' : ''}$${grouped.format(BigInt(whole))}.${fraction.padEnd(2, '0')}`;
}

/** Spent over limit as a percentage (0-100+), null without a limit. */
export function share(spent: string, limit: string | null | undefined): number | null {
  if (limit == null) return null;
  const cap = Number(limit);
  if (cap <= 0) return Number(spent) > 0 ? 100 : 0;
  return (Number(spent) / cap) * 100;
}

export const shortId = (id: string) => id.slice(0, 8);

/** The server counts lists exactly up to this many items (its COUNT_CAP). */
export const COUNT_CAP = 10_000;

/**
 * A list's total as the server gave it: exact, "10,000+" when the server stopped counting (a
 * filtered list past its cap), "about N" for the planner's estimate of an unfiltered table.
 */
export function formatTotal(count: number, estimate: boolean | undefined): string {
  const n = count.toLocaleString('en-US');
  if (!estimate) return n;
  return count <= COUNT_CAP ? `${n}+` : `about ${n}`;
}

export const PROVIDER_NAMES: Record<string, string> = {
  OPENROUTER: 'OpenRouter',
  VENICE: 'Venice',
  OPENAI_COMPATIBLE: 'OpenAI-compatible',
};
export const FRAMEWORK_NAMES: Record<string, string> = {
  OPENCLAW: 'OpenClaw',
  ELIZA: 'ElizaOS',
  GENERIC: 'Environment variables',
};
/** Framework names for narrow table cells. */
export const FRAMEWORK_SHORT: Record<string, string> = { OPENCLAW: 'OpenClaw', ELIZA: 'Eliza', GENERIC: 'env' };

/** A names table as the choices of a select. */
export const optionsOf = (names: Record<string, string>) =>
  Object.entries(names).map(([value, label]) => ({ value, label }));
