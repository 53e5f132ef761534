// The data model's enums as Prisma generates them from schema.prisma: the one source of every
// enum's values, for the GraphQL enums, input validation and type names alike.
import { Framework, KeyStatus, LeaseEventType, LeaseStatus, Provider, Role, Tier } from './generated/enums.js';

export { Framework, KeyStatus, LeaseEventType, LeaseStatus, Provider, Role, Tier };

/** An enum's values, in schema order. */
const valuesOf = <E extends Record<string, string>>(e: E) => Object.values(e) as [E[keyof E], ...E[keyof E][]];

export const ROLES = valuesOf(Role);
export const TIERS = valuesOf(Tier);
export const PROVIDERS = valuesOf(Provider);
export const FRAMEWORKS = valuesOf(Framework);
export const KEY_STATUSES = valuesOf(KeyStatus);
export const LEASE_STATUSES = valuesOf(LeaseStatus);
export const LEASE_EVENT_TYPES = valuesOf(LeaseEventType);
