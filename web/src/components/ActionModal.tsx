// A confirmation for an action that changes something: it says the consequence, may ask for
// input (a reason, a duration), shows the server's refusal in words, and closes on success.
import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import type { ReactNode } from 'react';
import type { CombinedError } from 'urql';
import { ErrorNotice } from './ErrorNotice';

export function ActionModal({
  opened,
  onClose,
  title,
  consequence,
  children,
  confirmLabel,
  danger = false,
  busy,
  error,
  onConfirm,
  confirmDisabled = false,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  consequence: ReactNode;
  children?: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy: boolean;
  error: CombinedError | undefined;
  onConfirm: () => void;
  confirmDisabled?: boolean;
}) {
  return (
    <Modal opened={opened} onClose={onClose} title={title} centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          onConfirm();
        }}
      >
        <Stack gap="sm">
          <Text size="sm">{consequence}</Text>
          {children}
          {error && <ErrorNotice error={error} />}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" color={danger ? 'red' : undefined} loading={busy} disabled={confirmDisabled}>
              {confirmLabel}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
