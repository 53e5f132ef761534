// Moving a user to another tier: says what changes (their next leases) and what does not (the
// leases they hold), and warns when they already hold more agents than the new tier allows.
import { Alert, Group, Text } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import { useMutation } from 'urql';
import { ActionModal } from '../../components/ActionModal';
import { TierBadge } from '../../components/StatusBadge';
import type { Tier, UserRowFragment } from '../../gql/graphql';
import { describePolicy, type PolicyTerms } from '../../lib/policy';
import { SetUserTierMutation } from './documents';

/** How many leases keep their terms: " (2 active now)." or ". They hold no active lease now." */
const held = (n: number) => (n === 0 ? '. They hold no active lease now.' : ` (${n} active now).`);

export function SetTierModal({
  user,
  tier,
  policy,
  onClose,
  onDone,
}: {
  user: UserRowFragment;
  tier: Tier;
  policy: PolicyTerms | undefined;
  onClose: () => void;
  onDone?: () => void;
}) {
  const [result, setTier] = useMutation(SetUserTierMutation);
  const over = policy && user.activeLeaseCount > policy.maxActiveLeases;
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Move ${user.id} to ${tier}?`}
      consequence={
        <>
          New leases of <b>{user.id}</b> follow the <b>{tier}</b> policy{policy ? ` (${describePolicy(policy)})` : ''}.
          Their current leases keep the terms they were granted with
          {held(user.activeLeaseCount)}
        </>
      }
      confirmLabel={`Move to ${tier}`}
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await setTier({ userId: user.id, tier });
        if (!res.error) onDone?.();
        return !res.error && { color: 'teal', message: `${user.id} is now on ${tier}` };
      }}
    >
      <Group gap="xs">
        <TierBadge tier={user.tier} />
        <Text span size="sm" c="dimmed" aria-hidden>
          →
        </Text>
        <TierBadge tier={tier} />
      </Group>
      {over && policy && (
        <Alert color="orange" variant="light" icon={<IconAlertTriangle size={16} />} py="xs">
          <Text size="sm">
            {user.id} holds {user.activeLeaseCount} active leases, more than {tier} allows ({policy.maxActiveLeases}).
            They keep them, but cannot start another agent until they are below the limit.
          </Text>
        </Alert>
      )}
    </ActionModal>
  );
}
