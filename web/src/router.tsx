// Real URLs for every page, each page its own chunk (loaded when first opened), each guarded by
// the role table: a role that may not use a page gets a clear "not allowed" instead.
import { type ComponentType, type LazyExoticComponent, lazy } from 'react';
import { createBrowserRouter, Navigate } from 'react-router';
import { Layout } from './components/Layout';
import { NotAllowed } from './components/NotAllowed';
import { canSee, homeOf, type Page } from './lib/roles';
import { useMe } from './me';
import { NotFoundPage } from './routes/NotFoundPage';

const load = {
  overview: () => import('./routes/overview/OverviewPage'),
  keys: () => import('./routes/keys/KeysPage'),
  key: () => import('./routes/keys/KeyDetailPage'),
  leases: () => import('./routes/leases/LeasesPage'),
  lease: () => import('./routes/leases/LeaseDetailPage'),
  users: () => import('./routes/users/UsersPage'),
  tiers: () => import('./routes/tiers/TiersPage'),
  audit: () => import('./routes/audit/AuditPage'),
  agents: () => import('./routes/agents/AgentsPage'),
};

const OverviewPage = lazy(load.overview);
const KeysPage = lazy(load.keys);
const KeyDetailPage = lazy(load.key);
const LeasesPage = lazy(load.leases);
const LeaseDetailPage = lazy(load.lease);
const UsersPage = lazy(load.users);
const TiersPage = lazy(load.tiers);
const AuditPage = lazy(load.audit);
const AgentsPage = lazy(load.agents);

/**
 * Starts loading the page a URL opens while sign-in (`me`) is still on its way, instead of after
 * it: the page's chunk and the first query no longer wait for each other.
 */
export function preloadPage(pathname: string) {
  const [, first = '', second] = pathname.split('/');
  const page =
    first === ''
      ? 'overview'
      : second
        ? ({ keys: 'key', leases: 'lease' } as const)[first as 'keys' | 'leases']
        : first;
  if (page && page in load) void load[page as keyof typeof load]().catch(() => {});
}

function guarded(name: Page, Page: LazyExoticComponent<ComponentType>) {
  return function Guarded() {
    const me = useMe();
    return canSee(me.role, name) ? <Page /> : <NotAllowed role={me.role} />;
  };
}

/** `/`: the overview for those who may see it; everyone else lands on their own start page. */
function Home() {
  const me = useMe();
  if (canSee(me.role, 'overview')) return <OverviewPage />;
  return <Navigate to={`/${homeOf(me.role)}`} replace />;
}

export const router = createBrowserRouter([
  {
    path: '/',
    Component: Layout,
    children: [
      { index: true, Component: Home },
      { path: 'keys', Component: guarded('keys', KeysPage) },
      { path: 'keys/:id', Component: guarded('keys', KeyDetailPage) },
      { path: 'leases', Component: guarded('leases', LeasesPage) },
      { path: 'leases/:id', Component: guarded('leases', LeaseDetailPage) },
      { path: 'users', Component: guarded('users', UsersPage) },
      { path: 'tiers', Component: guarded('tiers', TiersPage) },
      { path: 'audit', Component: guarded('audit', AuditPage) },
      { path: 'agents', Component: guarded('agents', AgentsPage) },
      { path: '*', Component: NotFoundPage },
    ],
  },
]);
