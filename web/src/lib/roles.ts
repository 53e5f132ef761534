// What each role sees and may do in the dashboard. The server decides for real; this only keeps
// controls a role cannot use off the page.
import type { Role } from '../gql/graphql';

export type Page = 'overview' | 'keys' | 'leases' | 'users' | 'tiers' | 'audit' | 'agents';

const PAGES: Record<Role, Page[]> = {
  ADMIN: ['overview', 'keys', 'leases', 'users', 'tiers', 'audit', 'agents'],
  OBSERVER: ['overview', 'keys', 'leases', 'users', 'tiers', 'audit'],
  WORKER: ['leases'],
  USER: ['agents'],
};

export const pagesOf = (role: Role) => PAGES[role];
export const canSee = (role: Role, page: Page) => PAGES[role].includes(page);
/** The page a role lands on. */
export const homeOf = (role: Role): Page => PAGES[role][0]!;

/** Changing keys, leases, users and policies. */
export const canAdminister = (role: Role) => role === 'ADMIN';
/** Holding leases for one's own agents. */
export const canHoldLeases = (role: Role) => role === 'ADMIN' || role === 'USER';
