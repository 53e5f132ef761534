// A confirmation for an action that changes something: it says the consequence, may ask for
// input (a reason, a duration), shows the server's refusal in words, and on success says what was
// done and closes.
import { Button, Group, type MantineColor, Modal, Stack, Text } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import type { ReactNode } from 'react';
import type { CombinedError } from 'urql';
import { ErrorNotice } from './ErrorNotice';

/** What a done action says. */
export interface DoneNotice {
  message: string;
  color?: MantineColor;
}

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
  /** Runs the action: a notice when it is done (shown, and the modal closes); false when refused. */
  onConfirm: () => Promise<DoneNotice | false>;
  confirmDisabled?: boolean;
}) {
  return (
    <Modal opened={opened} onClose={onClose} title={title} centered>
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          const done = await onConfirm();
          if (!done) return;
          notifications.show({ color: done.color, message: done.message });
          onClose();
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
