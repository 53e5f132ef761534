// A row of an item's actions: as buttons (detail pages) or folded into a "…" menu (table rows).
// Each action opens its own dialog; the list only says which.
import { ActionIcon, Button, Group, type MantineColor, Menu } from '@mantine/core';
import { IconDots, type IconProps } from '@tabler/icons-react';
import type { ComponentType } from 'react';

export interface Action {
  label: string;
  icon: ComponentType<IconProps>;
  color?: MantineColor;
  onClick: () => void;
}

export function ActionList({
  actions,
  variant,
  size = 'xs',
  menuLabel,
}: {
  actions: Action[];
  variant: 'menu' | 'buttons';
  size?: 'xs' | 'sm';
  /** The menu button's accessible name ("Actions for <item>"). */
  menuLabel: string;
}) {
  if (variant === 'buttons')
    return (
      <Group gap="xs">
        {actions.map((action) => (
          <Button
            key={action.label}
            variant="light"
            color={action.color}
            size={size}
            leftSection={<action.icon size={14} />}
            onClick={action.onClick}
          >
            {action.label}
          </Button>
        ))}
      </Group>
    );
  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <ActionIcon variant="subtle" color="gray" aria-label={menuLabel}>
          <IconDots size={16} />
        </ActionIcon>
      </Menu.Target>
      <Menu.Dropdown>
        {actions.map((action) => (
          <Menu.Item
            key={action.label}
            color={action.color}
            leftSection={<action.icon size={14} />}
            onClick={action.onClick}
          >
            {action.label}
          </Menu.Item>
        ))}
      </Menu.Dropdown>
    </Menu>
  );
}
