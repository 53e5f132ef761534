// Status badges with one colour per status everywhere: a light tint behind text in a dark shade
// of the hue, at WCAG AA contrast.
import { Badge, type BadgeProps, DEFAULT_THEME } from '@mantine/core';
import { type CSSProperties, memo } from 'react';
import type {
  KeyMode,
  KeyStatus,
  LeaseEventType,
  LeaseStatus,
  MintedKeyStatus,
  ProviderJobStatus,
  Role,
  Tier,
} from '../gql/graphql';

/**
 * Some hues' darkest theme shades read under WCAG AA on their own tint over a striped row: these
 * are darker (each at least 5:1 there).
 */
const DARKER: Record<string, string> = {
  yellow: '#7a5a00',
  orange: '#a6380b',
  teal: '#06664a',
  red: '#a51d24',
  blue: '#124e85',
  cyan: '#095c6b',
  gray: '#343a40',
};
const LEASE_COLORS: Record<LeaseStatus, string> = {
  ACTIVE: 'teal',
  SUSPENDED: 'orange',
  EXPIRED: 'gray',
  RELEASED: 'blue',
  REVOKED: 'red',
};
const EVENT_COLORS: Record<LeaseEventType, string> = {
  GRANTED: 'teal',
  EXTENDED: 'cyan',
  USAGE: 'gray',
  SUSPENDED: 'orange',
  EXPIRED: 'gray',
  RELEASED: 'blue',
  REVOKED: 'red',
  PROVIDER_JOB_FAILED: 'red',
};
/** A hue as the plain colour of its dark shade: Mantine tints a plain colour for `light` badges. */
export const dark = (hue: string) => DARKER[hue] ?? shade(hue);

export const LeaseStatusBadge = memo(({ status }: { status: LeaseStatus }) => (
  <Badge color={dark(LEASE_COLORS[status])} variant="light" size="sm" data-status={status} style={WHOLE}>
    {status}
  </Badge>
));

export const KeyStatusBadge = memo(({ status }: { status: KeyStatus }) => (
  <Badge color={dark(status === 'ACTIVE' ? 'teal' : 'gray')} variant="light" size="sm" style={WHOLE}>
    {status}
  </Badge>
));

export const EventTypeBadge = memo(({ type }: { type: LeaseEventType }) => (
  <Badge color={dark(EVENT_COLORS[type])} variant="light" size="sm" style={WHOLE}>
    {type}
  </Badge>
));

const MINTED_KEY_COLORS: Record<MintedKeyStatus, string> = {
  PENDING: 'yellow',
  ACTIVE: 'teal',
  DISABLED: 'orange',
  DELETED: 'gray',
  EXPIRED: 'gray',
};
const JOB_COLORS: Record<ProviderJobStatus, string> = {
  PENDING: 'yellow',
  RUNNING: 'cyan',
  DONE: 'gray',
  IRRECOVERABLE: 'red',
};

export const MintedKeyStatusBadge = memo(({ status }: { status: MintedKeyStatus }) => (
  <Badge color={dark(MINTED_KEY_COLORS[status])} variant="light" size="sm" data-status={status} style={WHOLE}>
    {status}
  </Badge>
));

/** A job that failed for good is solid red: it waits for an admin. */
export const ProviderJobStatusBadge = memo(({ status }: { status: ProviderJobStatus }) => (
  <Badge
    color={dark(JOB_COLORS[status])}
    variant={status === 'IRRECOVERABLE' ? 'filled' : 'light'}
    size="sm"
    data-status={status}
    style={WHOLE}
  >
    {status}
  </Badge>
));

/** SHARED keys are lent as they are; a MINT key gives every lease a provider key of its own. */
export const KeyModeBadge = memo(({ mode }: { mode: KeyMode }) => (
  <Badge color={dark(mode === 'MINT' ? 'grape' : 'gray')} variant="outline" size="sm" data-mode={mode} style={WHOLE}>
    {mode}
  </Badge>
));

// Tiers and roles: badges in a dark shade of each hue, for text contrast (WCAG AA); they never
// shrink into an ellipsis inside a table cell.
export const TIERS: readonly Tier[] = ['FREE', 'PRO', 'ENTERPRISE'];
export const ROLES: readonly Role[] = ['ADMIN', 'OBSERVER', 'WORKER', 'USER'];

/** Each tier's hue (borders, dots); badges use a dark shade of it, for text contrast (WCAG AA). */
export const TIER_COLORS: Record<Tier, string> = { FREE: 'gray', PRO: 'blue', ENTERPRISE: 'grape' };
/**
 * A dark shade as a plain colour, for `light` badges: Mantine gives a theme colour with a shade
 * ("red.9") a solid background there, so text contrast comes from a plain colour instead
 * (10 % tint behind text of the dark shade itself: WCAG AA).
 */
export const shade = (hue: string, index = 9) => DEFAULT_THEME.colors[hue]?.[index] ?? hue;

export const WHOLE: CSSProperties = { flexShrink: 0, minWidth: 'max-content' };

const ROLE_COLORS: Record<Role, string> = { ADMIN: 'red.9', OBSERVER: 'cyan.9', WORKER: 'indigo.9', USER: 'gray.7' };

export const TierBadge = ({ tier, ...props }: { tier: Tier } & BadgeProps) => (
  <Badge color={shade(TIER_COLORS[tier])} variant="light" size="sm" data-tier={tier} style={WHOLE} {...props}>
    {tier}
  </Badge>
);

export const RoleBadge = ({ role, ...props }: { role: Role } & BadgeProps) => (
  <Badge color={ROLE_COLORS[role]} variant="outline" size="sm" data-role={role} style={WHOLE} {...props}>
    {role}
  </Badge>
);
