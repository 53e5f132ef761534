// Previous / next through a Relay connection, with the cursor kept in the URL.
import { Button, Group, Text } from '@mantine/core';
import { IconChevronLeft, IconChevronRight } from '@tabler/icons-react';
import { formatTotal } from '../lib/format';

export interface PageInfoLike {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor?: string | null;
  endCursor?: string | null;
}

/** What the pager reads of a Relay connection. */
export interface ConnectionLike {
  pageInfo: PageInfoLike;
  totalCount: number;
  totalCountIsEstimate?: boolean;
}

export function Pager({
  connection,
  shown,
  goTo,
  noun,
}: {
  connection: ConnectionLike | undefined;
  shown: number;
  goTo: (page: { after?: string | null; before?: string | null }) => void;
  noun: string;
}) {
  const pageInfo = connection?.pageInfo;
  const totalCount = connection?.totalCount;
  return (
    <Group justify="space-between" mt="sm">
      <Text size="sm" c="dimmed">
        {totalCount === undefined
          ? ''
          : `${shown} shown of ${formatTotal(totalCount, connection?.totalCountIsEstimate)} ${noun}`}
      </Text>
      <Group gap="xs">
        <Button
          variant="default"
          size="xs"
          leftSection={<IconChevronLeft size={14} />}
          disabled={!pageInfo?.hasPreviousPage}
          onClick={() => goTo({ before: pageInfo?.startCursor })}
        >
          Previous
        </Button>
        <Button
          variant="default"
          size="xs"
          rightSection={<IconChevronRight size={14} />}
          disabled={!pageInfo?.hasNextPage}
          onClick={() => goTo({ after: pageInfo?.endCursor })}
        >
          Next
        </Button>
      </Group>
    </Group>
  );
}
