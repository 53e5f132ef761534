// An audit entry's details, readable: admin changes as "field: from → to" (money as USD, lengths
// in days and hours, times in UTC), anything else as "key: value" chips, with ids linked. It shows
// what the server stored and nothing else (the server never stores a secret).
import { Anchor, Badge, Group, Text } from '@mantine/core';
import type { ReactNode } from 'react';
import { Link } from 'react-router';
import { formatAbsolute, formatUsd, formatUsdExact } from '../lib/format';
import { humanDuration } from '../lib/policy';
import { KeyLink, LeaseLink, UserLink } from './Links';
import { shade, WHOLE } from './StatusBadge';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
interface Change {
  from: Json;
  to: Json;
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;
const SECONDS_FIELDS = new Set(['leaseDurationSeconds', 'bySeconds']);

const isChange = (value: unknown): value is Change =>
  typeof value === 'object' && value !== null && 'from' in value && 'to' in value;
const isUsdField = (field: string) => /Usd$/.test(field);

/** One value as text, by what its field holds. */
function valueText(field: string, value: Json): { text: string; exact?: string } {
  if (value === null) return { text: 'none' };
  if (isUsdField(field) && (typeof value === 'string' || typeof value === 'number'))
    return { text: formatUsd(String(value)), exact: formatUsdExact(String(value)) };
  if (SECONDS_FIELDS.has(field) && typeof value === 'number')
    return { text: humanDuration(value), exact: `${value.toLocaleString('en-US')} s` };
  if (typeof value === 'string' && ISO_TIME.test(value)) return { text: formatAbsolute(value), exact: value };
  if (Array.isArray(value))
    return value.length
      ? { text: value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ') }
      : { text: 'none' };
  if (typeof value === 'object') {
    const json = JSON.stringify(value);
    return json === '{}' ? { text: 'none' } : { text: json.length > 60 ? `${json.slice(0, 57)}…` : json, exact: json };
  }
  return { text: String(value) };
}

function Value({ field, value }: { field: string; value: Json }) {
  // Ids link to where they are shown in full.
  if (typeof value === 'string' && field === 'keyId')
    return <KeyLink id={value} size="xs" style={{ fontFamily: 'var(--mantine-font-family-monospace)' }} />;
  if (typeof value === 'string' && field === 'leaseId') return <LeaseLink id={value} size="xs" />;
  if (typeof value === 'string' && field === 'userId') return <UserLink id={value} size="xs" />;
  const { text, exact } = valueText(field, value);
  return (
    <Text
      span
      size="xs"
      ff="monospace"
      c={value === null ? 'dimmed' : undefined}
      title={exact && exact !== text ? exact : undefined}
    >
      {text}
    </Text>
  );
}

function Chip({ children }: { children: ReactNode }) {
  return (
    <Group
      component="li"
      gap={4}
      wrap="nowrap"
      px={6}
      py={1}
      style={{
        border: '1px solid var(--mantine-color-default-border)',
        borderRadius: 4,
        listStyle: 'none',
        maxWidth: '100%',
      }}
    >
      {children}
    </Group>
  );
}

const FieldName = ({ name }: { name: string }) => (
  <Text span size="xs" c="dimmed">
    {name}:
  </Text>
);

export function AuditDetails({ details }: { details: unknown }) {
  const all = (typeof details === 'object' && details !== null && !Array.isArray(details) ? details : {}) as Record<
    string,
    Json
  >;
  const changes: Record<string, Change> | null = isChangeMap(all.changes)
    ? (all.changes as Record<string, Change>)
    : null;
  const rest = Object.entries(all).filter(([key]) => !(key === 'changes' && changes));
  if (!changes && rest.length === 0) {
    return (
      <Text span size="xs" c="dimmed">
        —
      </Text>
    );
  }
  return (
    <Group component="ul" gap={4} m={0} p={0} wrap="wrap">
      {changes &&
        Object.entries(changes).map(([field, change]) => (
          <Chip key={`change:${field}`}>
            <FieldName name={field} />
            <Value field={field} value={change.from} />
            <Text span size="xs" c="dimmed" aria-label="changed to">
              →
            </Text>
            <Text span size="xs" fw={600}>
              <Value field={field} value={change.to} />
            </Text>
          </Chip>
        ))}
      {rest.map(([key, value]) => (
        <Chip key={key}>
          <FieldName name={key} />
          <Value field={key} value={value} />
        </Chip>
      ))}
    </Group>
  );
}

function isChangeMap(value: unknown): value is Record<string, Change> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every(isChange);
}

/** Where an entry's target is shown: a key, a lease, a user's leases, the tiers page. */
export function AuditTarget({ type, id, label }: { type: string; id: string | null; label?: string | null }) {
  let link: ReactNode = id ? (
    <Text span size="sm" ff="monospace">
      {id}
    </Text>
  ) : (
    <Text span size="sm" c="dimmed">
      —
    </Text>
  );
  if (id && type === 'ManagedKey') link = <KeyLink id={id} label={label} />;
  if (id && type === 'Lease') link = <LeaseLink id={id} />;
  if (id && type === 'User') link = <UserLink id={id} />;
  if (type === 'TierPolicy') {
    link = (
      <Anchor component={Link} to="/tiers" size="sm">
        {id ? `${id} policy` : 'tier policies'}
      </Anchor>
    );
  }
  return (
    <Group gap={6} wrap="nowrap">
      <Text span size="xs" c="dimmed" w={72} style={{ flexShrink: 0 }}>
        {TARGET_NAMES[type] ?? type}
      </Text>
      {link}
    </Group>
  );
}

export const TARGET_TYPES = ['ManagedKey', 'Lease', 'User', 'TierPolicy'] as const;
export const TARGET_NAMES: Record<string, string> = {
  ManagedKey: 'Key',
  Lease: 'Lease',
  User: 'User',
  TierPolicy: 'Tier policy',
};

/**
 * Every action the server audits, grouped by what it acts on. Lease ends are stored in the past
 * tense (`lease.${status}`: lease.released, lease.revoked, lease.expired, lease.suspended).
 */
export const ACTIONS: { group: string; items: string[] }[] = [
  {
    group: 'Keys',
    items: [
      'managedKey.create',
      'managedKey.update',
      'managedKey.disable',
      'managedKey.enable',
      'managedKey.rotateSecret',
    ],
  },
  {
    group: 'Leases',
    items: [
      'lease.grant',
      'lease.released',
      'lease.revoked',
      'lease.expired',
      'lease.suspended',
      'lease.extend',
      'lease.reactivate',
      'lease.resume',
      'lease.updateCap',
      'lease.resolve',
    ],
  },
  { group: 'Tiers and users', items: ['tierPolicy.update', 'user.setTier'] },
];

const ACTION_COLORS: [RegExp, string][] = [
  [/\.(revoked?|disable|suspend(ed)?)$/, 'red'],
  [/\.(create|grant|enable|reactivate|resume)$/, 'teal'],
  [/\.rotateSecret$/, 'violet'],
  [/\.(update|updateCap|extend|setTier)$/, 'blue'],
];

export function ActionBadge({ action }: { action: string }) {
  // The hue tints the badge; the text stays dark, readable on plain and striped rows alike.
  const color = shade(ACTION_COLORS.find(([pattern]) => pattern.test(action))?.[1] ?? 'gray', 7);
  return (
    <Badge
      color={color}
      variant="light"
      size="sm"
      tt="none"
      ff="monospace"
      fw={500}
      c="dark.8"
      style={WHOLE}
      data-action={action}
    >
      {action}
    </Badge>
  );
}
