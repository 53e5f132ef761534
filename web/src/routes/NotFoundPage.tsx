import { Button, Stack, Text, Title } from '@mantine/core';
import { Link, useLocation } from 'react-router';

export function NotFoundPage() {
  const { pathname } = useLocation();
  return (
    <Stack align="center" gap="sm" py={80}>
      <Title order={1} size="h2">
        No such page
      </Title>
      <Text c="dimmed">Nothing lives at {pathname}.</Text>
      <Button component={Link} to="/" variant="light">
        Back to the start
      </Button>
    </Stack>
  );
}
