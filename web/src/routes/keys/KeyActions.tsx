// What an admin can do to a key: edit, rotate its secret, disable (revoking its leases) or enable.
// Observers never get here: the pages render this for ADMIN only.
import { PasswordInput, TextInput } from '@mantine/core';
import { IconPencil, IconPlayerPause, IconPlayerPlay, IconRefresh } from '@tabler/icons-react';
import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { type Action, ActionList } from '../../components/ActionList';
import { ActionModal } from '../../components/ActionModal';
import type { KeyFormFieldsFragment, KeyRowFragment } from '../../gql/graphql';
import { DisableKeyMutation, EnableKeyMutation, RotateKeyMutation, SuspendedOnKeyQuery } from './documents';
import { KeyFormModal } from './KeyFormModal';

type Dialog = 'edit' | 'disable' | 'enable' | 'rotate' | null;

function plural(n: number, noun: string) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function DisableModal({ keyRow, onClose }: { keyRow: KeyRowFragment; onClose: () => void }) {
  const [reason, setReason] = useState('');
  const [{ data }] = useQuery({
    query: SuspendedOnKeyQuery,
    variables: { keyId: keyRow.id },
    requestPolicy: 'network-only',
  });
  const [result, disable] = useMutation(DisableKeyMutation);
  const suspended = data?.leases.totalCount ?? 0;
  const consequence =
    keyRow.activeLeaseCount + suspended === 0
      ? `Disabling ${keyRow.label} revokes no leases: none is active on it. No new lease will be granted on it.`
      : `Disabling revokes ${plural(keyRow.activeLeaseCount, 'active lease')}` +
        `${suspended ? ` and ${plural(suspended, 'suspended lease')}` : ''} on ${keyRow.label}; ` +
        `their agents are told to stop. No new lease will be granted on it.`;
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Disable ${keyRow.label}?`}
      consequence={consequence}
      confirmLabel="Disable key"
      danger
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await disable({ id: keyRow.id, reason: reason.trim() || null });
        return !res.error && { color: 'orange', message: `${keyRow.label} disabled` };
      }}
    >
      <TextInput
        label="Reason"
        placeholder="e.g. provider reported abuse"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        data-autofocus
      />
    </ActionModal>
  );
}

function EnableModal({ keyRow, onClose }: { keyRow: KeyRowFragment; onClose: () => void }) {
  const [result, enable] = useMutation(EnableKeyMutation);
  const text = `New leases can be granted on ${keyRow.label} again. Leases revoked when it was disabled stay ended.`;
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Enable ${keyRow.label}?`}
      consequence={text}
      confirmLabel="Enable key"
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await enable({ id: keyRow.id });
        return !res.error && { color: 'teal', message: `${keyRow.label} enabled` };
      }}
    />
  );
}

function RotateModal({ keyRow, onClose }: { keyRow: KeyRowFragment; onClose: () => void }) {
  const [apiKey, setApiKey] = useState('');
  const [result, rotate] = useMutation(RotateKeyMutation);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Rotate the secret of ${keyRow.label}`}
      consequence={
        `Agents on the metering proxy switch to the new secret with their next request; ` +
        `agents given the key directly (DIRECT delivery) keep the old one until they resolve their lease again.`
      }
      confirmLabel="Rotate secret"
      busy={result.fetching}
      error={result.error}
      confirmDisabled={!apiKey.trim()}
      onConfirm={async () => {
        const res = await rotate({ id: keyRow.id, apiKey: apiKey.trim() });
        return (
          !res.error && {
            color: 'teal',
            message: `New secret for ${keyRow.label}: ${res.data?.rotateManagedKeySecret.maskedKey}`,
          }
        );
      }}
    >
      <PasswordInput
        label="New API key"
        autoComplete="off"
        value={apiKey}
        onChange={(e) => setApiKey(e.currentTarget.value)}
        data-autofocus
      />
    </ActionModal>
  );
}

export function KeyActions({
  keyRow,
  form,
  variant = 'menu',
}: {
  keyRow: KeyRowFragment;
  form?: KeyFormFieldsFragment;
  variant?: 'menu' | 'buttons';
}) {
  const [dialog, setDialog] = useState<Dialog>(null);
  const close = () => setDialog(null);
  const disabled = keyRow.status === 'DISABLED';
  const open = (next: Dialog) => () => setDialog(next);
  const actions: Action[] = [
    ...(form ? [{ label: 'Edit', icon: IconPencil, onClick: open('edit') }] : []),
    { label: 'Rotate secret', icon: IconRefresh, onClick: open('rotate') },
    disabled
      ? { label: 'Enable', icon: IconPlayerPlay, onClick: open('enable') }
      : { label: 'Disable…', icon: IconPlayerPause, color: 'red', onClick: open('disable') },
  ];

  return (
    <>
      <ActionList actions={actions} variant={variant} menuLabel={`Actions for ${keyRow.label}`} />
      {form && <KeyFormModal opened={dialog === 'edit'} onClose={close} editing={form} />}
      {dialog === 'disable' && <DisableModal keyRow={keyRow} onClose={close} />}
      {dialog === 'enable' && <EnableModal keyRow={keyRow} onClose={close} />}
      {dialog === 'rotate' && <RotateModal keyRow={keyRow} onClose={close} />}
    </>
  );
}
