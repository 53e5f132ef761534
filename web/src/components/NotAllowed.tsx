// What a role sees on a page it may not use: a clear refusal, and the way back.
import { Button, Stack, Text, Title } from '@mantine/core';
import { IconLock } from '@tabler/icons-react';
import { Link } from 'react-router';
import type { Role } from '../gql/graphql';
import { homeOf } from '../lib/roles';

export function NotAllowed({ role }: { role: Role }) {
  return (
    <Stack align="center" gap="sm" py={80} role="alert">
      <IconLock size={40} stroke={1.5} aria-hidden />
      <Title order={1} size="h2">
        Not allowed
      </Title>
      <Text c="dimmed" ta="center" maw={460}>
        Your role ({role}) cannot open this page. If you need it, ask an MPK admin for an admin or observer token.
      </Text>
      <Button component={Link} to={`/${homeOf(role) === 'overview' ? '' : homeOf(role)}`} variant="light">
        Go to your start page
      </Button>
    </Stack>
  );
}
