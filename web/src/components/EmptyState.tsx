// What an empty list says: what is missing, and what to do next.
import { Stack, Text, ThemeIcon } from '@mantine/core';
import { IconInbox } from '@tabler/icons-react';
import type { ReactNode } from 'react';

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    // The text colour is set here: a table's empty state would otherwise lend its own pale grey.
    <Stack align="center" gap="xs" py="xl" style={{ color: 'var(--mantine-color-text)' }}>
      <ThemeIcon variant="light" color="gray" size="xl" radius="xl">
        <IconInbox size={22} />
      </ThemeIcon>
      <Text fw={600}>{title}</Text>
      {children && (
        <Text size="sm" c="dimmed" ta="center" maw={420}>
          {children}
        </Text>
      )}
      {action}
    </Stack>
  );
}
