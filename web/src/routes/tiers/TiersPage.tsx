// The three tier policies: how long a lease lasts, how many agents a user may run at once, and
// the spend cap each lease is granted with. Admins edit them; a change applies to new leases only.
import { Alert, Anchor, Button, Group, Paper, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { IconInfoCircle, IconPencil } from '@tabler/icons-react';
import { type ReactNode, useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from 'urql';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { Money } from '../../components/Money';
import { PageHeader } from '../../components/PageHeader';
import { PageLoader } from '../../components/PageLoader';
import { RelativeTime } from '../../components/RelativeTime';
import { TIER_COLORS } from '../../components/StatusBadge';
import type { Tier, TierPolicyFieldsFragment } from '../../gql/graphql';
import { humanDuration } from '../../lib/policy';
import { canAdminister } from '../../lib/roles';
import { useMe } from '../../me';
import { TiersPageQuery } from './documents';
import { TierPolicyForm } from './TierPolicyForm';

const TIER_NOTES: Record<Tier, string> = {
  FREE: 'Every new user starts here.',
  PRO: 'Assigned per user by an admin.',
  ENTERPRISE: 'Assigned per user by an admin.',
};

function Fact({ label, value, detail }: { label: string; value: ReactNode; detail?: ReactNode }) {
  return (
    <div>
      <Text component="dt" size="xs" c="dimmed" tt="uppercase" fw={600} lts={0.3}>
        {label}
      </Text>
      <Group component="dd" gap={8} align="baseline" m={0} wrap="nowrap">
        <Text span size="xl" fw={600} ff="monospace">
          {value}
        </Text>
        {detail && (
          <Text span size="xs" c="dimmed">
            {detail}
          </Text>
        )}
      </Group>
    </div>
  );
}

function PolicyCard({
  policy,
  users,
  admin,
  onEdit,
}: {
  policy: TierPolicyFieldsFragment;
  users: number | undefined;
  admin: boolean;
  onEdit: () => void;
}) {
  return (
    <Paper
      withBorder
      radius="md"
      p="md"
      data-tier={policy.tier}
      style={{ borderTop: `3px solid var(--mantine-color-${TIER_COLORS[policy.tier]}-6)` }}
    >
      <Stack gap="md">
        <Group justify="space-between" align="flex-start" wrap="nowrap">
          <Stack gap={2}>
            <Title order={2} size="h4">
              {policy.tier}
            </Title>
            <Text size="xs" c="dimmed">
              {users === undefined ? (
                ''
              ) : (
                <>
                  <Anchor component={Link} to={`/users?tier=${policy.tier}`} size="xs" underline="always">
                    {users.toLocaleString('en-US')} {users === 1 ? 'user' : 'users'}
                  </Anchor>
                  {' · '}
                </>
              )}
              {TIER_NOTES[policy.tier]}
            </Text>
          </Stack>
          {admin && (
            <Button
              variant="light"
              size="xs"
              leftSection={<IconPencil size={14} />}
              onClick={onEdit}
              aria-label={`Edit ${policy.tier} policy`}
              // The tier's note beside it wraps; the button keeps its width.
              style={{ flexShrink: 0 }}
            >
              Edit
            </Button>
          )}
        </Group>
        <Stack component="dl" gap="sm" m={0}>
          <Fact
            label="Lease length"
            value={humanDuration(policy.leaseDurationSeconds)}
            detail={`${policy.leaseDurationSeconds.toLocaleString('en-US')} s`}
          />
          <Fact
            label="Agent limit"
            value={policy.maxActiveLeases.toLocaleString('en-US')}
            detail={policy.maxActiveLeases === 1 ? 'active lease (agent) per user' : 'active leases (agents) per user'}
          />
          <Fact
            label="Spend cap per lease"
            value={<Money value={policy.spendCapUsd} exact size="xl" fw={600} />}
            detail="USD, then the lease is suspended"
          />
          <Fact
            label="Request rate per lease"
            value={policy.requestsPerMinute == null ? 'No limit' : policy.requestsPerMinute.toLocaleString('en-US')}
            detail={
              policy.requestsPerMinute == null
                ? 'through the metering proxy'
                : 'requests a minute through the metering proxy, then 429'
            }
          />
        </Stack>
        <Text size="xs" c="dimmed">
          Last changed <RelativeTime value={policy.updatedAt} size="xs" /> ·{' '}
          <Anchor
            component={Link}
            to={`/audit?targetType=TierPolicy&targetId=${policy.tier}`}
            size="xs"
            underline="always"
          >
            history
          </Anchor>
        </Text>
      </Stack>
    </Paper>
  );
}

export default function TiersPage() {
  const me = useMe();
  const admin = canAdminister(me.role);
  const [editing, setEditing] = useState<Tier | null>(null);
  const [{ data, error, fetching }] = useQuery({ query: TiersPageQuery });
  const policies = data?.tierPolicies ?? [];
  const counts: Record<Tier, number | undefined> = {
    FREE: data?.free.totalCount,
    PRO: data?.pro.totalCount,
    ENTERPRISE: data?.enterprise.totalCount,
  };
  const current = policies.find((p) => p.tier === editing);

  return (
    <Stack gap={0}>
      <PageHeader
        title="Tiers"
        description={
          "What a user's tier grants each lease they start: its length, how many agents may run at once, " +
          'its spend cap and its request rate.'
        }
      />
      <Alert variant="light" color="blue" icon={<IconInfoCircle size={18} />} mb="md" py="xs">
        <Text size="sm">
          A policy change applies to <b>new leases only</b>. Leases already granted keep the length and spend cap they
          were granted with; an agent limit counts a user's active leases whenever they start another.
        </Text>
      </Alert>
      {error && <ErrorNotice error={error} title="Tier policies could not be loaded" />}
      {fetching && !data ? (
        <PageLoader />
      ) : policies.length === 0 ? (
        !error && (
          <EmptyState title="No tier policies">
            MPK seeds the FREE, PRO and ENTERPRISE policies when it migrates its database: run the migrations (npm run
            db:migrate) and reload.
          </EmptyState>
        )
      ) : (
        <SimpleGrid cols={{ base: 1, md: 3 }} spacing="md">
          {policies.map((policy) => (
            <PolicyCard
              key={policy.tier}
              policy={policy}
              users={counts[policy.tier]}
              admin={admin}
              onEdit={() => setEditing(policy.tier)}
            />
          ))}
        </SimpleGrid>
      )}
      {admin && current && (
        <TierPolicyForm opened policy={current} users={counts[current.tier]} onClose={() => setEditing(null)} />
      )}
    </Stack>
  );
}
