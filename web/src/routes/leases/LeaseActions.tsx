// What an admin can do to a lease: extend it (presets or custom; reactivate an expired one),
// change its spend cap, revoke it. Each says its consequence and shows refusals in words.
import { NumberInput, SegmentedControl, Stack, Text, TextInput } from '@mantine/core';
import { IconCash, IconClockPlus, IconPlayerStop } from '@tabler/icons-react';
import { useState } from 'react';
import { useMutation } from 'urql';
import { type Action, ActionList } from '../../components/ActionList';
import { ActionModal } from '../../components/ActionModal';
import type { LeaseRowFragment } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { formatUsd, formatUsdExact, shortId } from '../../lib/format';
import { DURATION_PRESETS, humanDuration } from '../../lib/policy';
import { ExtendLeaseMutation, RevokeLeaseMutation, UpdateLeaseCapMutation } from './documents';

export function RevokeModal({ lease, onClose }: { lease: LeaseRowFragment; onClose: () => void }) {
  const [reason, setReason] = useState('');
  const [result, revoke] = useMutation(RevokeLeaseMutation);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Revoke lease ${shortId(lease.id)}?`}
      consequence={
        `The lease ends now and ${lease.agentId ? `agent ${lease.agentId}` : 'its agent'} of ${lease.user.id} ` +
        `is told to stop. A revoked lease cannot be brought back.`
      }
      confirmLabel="Revoke lease"
      danger
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await revoke({ id: lease.id, reason: reason.trim() || null });
        return !res.error && { color: 'red', message: `Lease ${shortId(lease.id)} revoked` };
      }}
    >
      <TextInput
        label="Reason"
        placeholder="shown to the user and kept in the audit log"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        data-autofocus
      />
    </ActionModal>
  );
}

export function ExtendModal({ lease, onClose }: { lease: LeaseRowFragment; onClose: () => void }) {
  const expired =
    lease.status === 'EXPIRED' || (lease.status === 'ACTIVE' && new Date(lease.expiresAt).getTime() <= Date.now());
  const [preset, setPreset] = useState(String(DURATION_PRESETS[1]!.seconds));
  const [hours, setHours] = useState<number | string>(12);
  const [result, extend] = useMutation(ExtendLeaseMutation);
  const bySeconds = preset === 'custom' ? Math.round(Number(hours) * 3600) : Number(preset);
  const errors = fieldErrors(result.error);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={expired ? `Reactivate lease ${shortId(lease.id)}` : `Extend lease ${shortId(lease.id)}`}
      consequence={
        expired
          ? `The lease expired. Reactivating gives it ${humanDuration(bySeconds || 0)} from now, ` +
            `if ${lease.user.id}'s tier and the key still have room.`
          : `The lease's expiry moves ${humanDuration(bySeconds || 0)} later.`
      }
      confirmLabel={expired ? 'Reactivate' : 'Extend'}
      busy={result.fetching}
      error={result.error && !errors.bySeconds ? result.error : undefined}
      confirmDisabled={!(bySeconds > 0)}
      onConfirm={async () => {
        const res = await extend({ id: lease.id, bySeconds, reactivate: expired });
        return (
          !res.error && {
            color: 'teal',
            message: `Lease ${shortId(lease.id)} ${expired ? 'reactivated' : 'extended'} by ${humanDuration(bySeconds)}`,
          }
        );
      }}
    >
      <Stack gap="xs">
        <SegmentedControl
          aria-label="Extend by"
          value={preset}
          onChange={setPreset}
          data={[
            ...DURATION_PRESETS.map((p) => ({ value: String(p.seconds), label: p.label })),
            { value: 'custom', label: 'Custom' },
          ]}
        />
        {preset === 'custom' && (
          <NumberInput
            label="Hours"
            min={0.02}
            step={1}
            decimalScale={2}
            value={hours}
            onChange={setHours}
            error={errors.bySeconds}
            data-autofocus
          />
        )}
      </Stack>
    </ActionModal>
  );
}

export function CapModal({ lease, onClose }: { lease: LeaseRowFragment; onClose: () => void }) {
  const [cap, setCap] = useState(lease.spendCapUsd);
  const [result, update] = useMutation(UpdateLeaseCapMutation);
  const errors = fieldErrors(result.error);
  const over = Number(cap) <= Number(lease.usageUsd);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Spend cap of lease ${shortId(lease.id)}`}
      consequence={
        <>
          The lease has spent <b>{formatUsdExact(lease.usageUsd)}</b> of its {formatUsd(lease.spendCapUsd)} cap.{' '}
          {lease.status === 'SUSPENDED' && !over && 'A cap above its spend brings the suspended lease back to ACTIVE. '}
          {lease.status === 'ACTIVE' && over && 'A cap at or below its spend suspends the lease now. '}
        </>
      }
      confirmLabel="Set cap"
      busy={result.fetching}
      error={result.error && !errors.spendCapUsd ? result.error : undefined}
      onConfirm={async () => {
        const res = await update({ id: lease.id, spendCapUsd: cap.trim() });
        return !res.error && { color: 'teal', message: `Cap of lease ${shortId(lease.id)} set to ${formatUsd(cap)}` };
      }}
    >
      <TextInput
        label="Spend cap (USD)"
        inputMode="decimal"
        value={cap}
        onChange={(e) => setCap(e.currentTarget.value)}
        error={errors.spendCapUsd}
        data-autofocus
      />
    </ActionModal>
  );
}

type Dialog = 'revoke' | 'extend' | 'cap' | null;

/** The admin's buttons for one lease, with their dialogs. */
export function LeaseActions({ lease, size = 'xs' }: { lease: LeaseRowFragment; size?: 'xs' | 'sm' }) {
  const [dialog, setDialog] = useState<Dialog>(null);
  const close = () => setDialog(null);
  const open = lease.status === 'ACTIVE' || lease.status === 'SUSPENDED';
  const extendable = lease.status === 'ACTIVE' || lease.status === 'EXPIRED';
  if (!open && !extendable)
    return (
      <Text size="xs" c="dimmed">
        Ended: nothing to change.
      </Text>
    );
  const actions: Action[] = [
    ...(extendable
      ? [
          {
            label: lease.status === 'EXPIRED' ? 'Reactivate' : 'Extend',
            icon: IconClockPlus,
            onClick: () => setDialog('extend'),
          },
        ]
      : []),
    ...(open
      ? [
          { label: 'Change cap', icon: IconCash, onClick: () => setDialog('cap') },
          { label: 'Revoke', icon: IconPlayerStop, color: 'red', onClick: () => setDialog('revoke') },
        ]
      : []),
  ];
  return (
    <>
      <ActionList
        actions={actions}
        variant="buttons"
        size={size}
        menuLabel={`Actions for lease ${shortId(lease.id)}`}
      />
      {dialog === 'revoke' && <RevokeModal lease={lease} onClose={close} />}
      {dialog === 'extend' && <ExtendModal lease={lease} onClose={close} />}
      {dialog === 'cap' && <CapModal lease={lease} onClose={close} />}
    </>
  );
}
