// How a tier policy reads: lease length in days/hours, the agent limit, the cap per lease.
import type { Tier } from '../gql/graphql';
import { formatUsd } from './format';

const UNITS: [string, number][] = [
  ['d', 86_400],
  ['h', 3600],
  ['min', 60],
  ['s', 1],
];

/** "2 d", "1 d 6 h", "90 s" -> "1 min 30 s": whole units, largest first. */
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return `${seconds} s`;
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [name, size] of UNITS) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
  }
  return parts.join(' ');
}

export const agents = (n: number) => (n === 1 ? '1 agent' : `${n.toLocaleString('en-US')} agents`);

/** A policy's terms, as any query selects them. */
export interface PolicyTerms {
  tier: Tier;
  leaseDurationSeconds: number;
  maxActiveLeases: number;
  spendCapUsd: string;
}

/** "7 d leases, 3 agents, $10.00 cap per lease". */
export function describePolicy(policy: Omit<PolicyTerms, 'tier'>): string {
  return (
    `${humanDuration(policy.leaseDurationSeconds)} leases, ${agents(policy.maxActiveLeases)} at a time, ` +
    `${formatUsd(policy.spendCapUsd)} cap per lease`
  );
}

/** Presets for the lease length (seconds). */
export const DURATION_PRESETS: { label: string; seconds: number }[] = [
  { label: '1 h', seconds: 3600 },
  { label: '1 d', seconds: 86_400 },
  { label: '7 d', seconds: 7 * 86_400 },
  { label: '30 d', seconds: 30 * 86_400 },
];
