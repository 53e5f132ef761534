// USD amounts: two decimals in tables, the exact figure (and on hover in tables) on detail pages.
import { Text, type TextProps } from '@mantine/core';
import { formatUsd, formatUsdExact } from '../lib/format';

export function Money({
  value,
  exact = false,
  ...props
}: { value: string | null | undefined; exact?: boolean } & TextProps) {
  return (
    <Text span ff="monospace" title={value == null ? undefined : formatUsdExact(value)} {...props}>
      {exact ? formatUsdExact(value) : formatUsd(value)}
    </Text>
  );
}
