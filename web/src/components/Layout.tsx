// The console's frame: navigation for the caller's role, the live indicator, who is signed in,
// and the subscriptions that keep every page live for the whole session.
import { AppShell, Badge, Burger, Button, Group, NavLink, Text, Title, Tooltip } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import {
  IconClipboardList,
  IconKey,
  IconLayoutDashboard,
  IconLogout,
  IconReceipt2,
  IconRobot,
  IconStairs,
  IconUsers,
} from '@tabler/icons-react';
import { Suspense, useEffect } from 'react';
import { Outlet, NavLink as RouterNavLink, useLocation } from 'react-router';
import { useClient } from 'urql';
import { LiveLeaseEventsSubscription, MyLeaseEventsSubscription } from '../api/documents';
import { liveEvents } from '../events';
import { type Page, pagesOf } from '../lib/roles';
import { useMe } from '../me';
import { signOut } from '../session';
import { LiveIndicator } from './LiveIndicator';
import { PageLoader } from './PageLoader';

const NAV: Record<Page, { label: string; to: string; icon: typeof IconKey }> = {
  overview: { label: 'Overview', to: '/', icon: IconLayoutDashboard },
  keys: { label: 'Keys', to: '/keys', icon: IconKey },
  leases: { label: 'Leases', to: '/leases', icon: IconReceipt2 },
  users: { label: 'Users', to: '/users', icon: IconUsers },
  tiers: { label: 'Tiers', to: '/tiers', icon: IconStairs },
  audit: { label: 'Audit', to: '/audit', icon: IconClipboardList },
  agents: { label: 'My agents', to: '/agents', icon: IconRobot },
};

/**
 * The session's lease events (all, or the user's own): they keep every lease on screen current and
 * feed the event feeds. Key usage is followed by the pages that show key spend (useKeyUsage).
 */
function LiveSubscriptions() {
  const me = useMe();
  const client = useClient();
  const own = me.role === 'USER';
  // On the client directly, not through component state: an event updates the cache and the
  // feeds' store, and re-renders only what shows it.
  useEffect(() => {
    const subscription = own
      ? client
          .subscription(MyLeaseEventsSubscription, {})
          .subscribe((result) => result.data && liveEvents.push(result.data.leaseEvents))
      : client
          .subscription(LiveLeaseEventsSubscription, {})
          .subscribe((result) => result.data && liveEvents.push(result.data.leaseEvents));
    return () => {
      subscription.unsubscribe();
      liveEvents.clear();
    };
  }, [client, own]);
  return null;
}

export function Layout() {
  const me = useMe();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  // On a phone the menu closes once a page is chosen: on every change of page.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the path is the trigger, not an input
  useEffect(close, [location.pathname, close]);
  const isActive = (to: string) => (to === '/' ? location.pathname === '/' : location.pathname.startsWith(to));

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <LiveSubscriptions />
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Title order={2} size="h4">
              MPK
            </Title>
            <Text size="sm" c="dimmed" visibleFrom="md">
              Managed Provider Keys
            </Text>
          </Group>
          <Group gap="md" wrap="nowrap">
            <LiveIndicator />
            <Tooltip label={me.email ?? me.id}>
              <Group gap={6} wrap="nowrap" data-testid="signed-in-as">
                <Text size="sm" fw={500} truncate maw={160}>
                  {me.id}
                </Text>
                <Badge size="sm" variant="light" data-testid="me-role">
                  {me.role}
                </Badge>
              </Group>
            </Tooltip>
            <Button variant="subtle" size="xs" leftSection={<IconLogout size={14} />} onClick={() => signOut()}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Pages">
        {pagesOf(me.role).map((page) => {
          const { label, to, icon: Icon } = NAV[page];
          return (
            <NavLink
              key={page}
              component={RouterNavLink}
              to={to}
              label={label}
              leftSection={<Icon size={18} stroke={1.6} />}
              active={isActive(to)}
            />
          );
        })}
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<PageLoader />}>
          <Outlet />
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
