// A failed operation in words, with the server's code kept visible for support.
import { Alert, Badge, Group, Text } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import type { CombinedError } from 'urql';
import { refusalOf } from '../lib/errors';

export function ErrorNotice({
  error,
  title = 'That did not work',
  provider,
}: {
  error: CombinedError;
  title?: string;
  provider?: string | null;
}) {
  const refusal = refusalOf(error, { provider });
  return (
    <Alert color="red" variant="light" icon={<IconAlertTriangle size={18} />} title={title} role="alert">
      <Group gap="xs" align="flex-start" wrap="nowrap">
        <Text size="sm" c="red.9" style={{ flex: 1 }}>
          {refusal.words}
        </Text>
        <Badge variant="outline" color="red.9" size="sm" title={refusal.message} style={{ flexShrink: 0 }}>
          {refusal.code}
        </Badge>
      </Group>
    </Alert>
  );
}
