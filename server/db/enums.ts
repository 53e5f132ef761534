// The data model's enums as Prisma generates them from schema.prisma: the one source of every
// enum's values, for the GraphQL enums, input validation and type names alike.
import * as enums from './generated/enums.js';

export * from './generated/enums.js';

/** An enum's values, in schema order. */
const valuesOf = <E extends Record<string, string>>(e: E) => Object.values(e) as [E[keyof E], ...E[keyof E][]];

export const ROLES = valuesOf(enums.Role);
export const TIERS = valuesOf(enums.Tier);
export const PROVIDERS = valuesOf(enums.Provider);
export const FRAMEWORKS = valuesOf(enums.Framework);
export const KEY_STATUSES = valuesOf(enums.KeyStatus);
export const LEASE_STATUSES = valuesOf(enums.LeaseStatus);
export const LEASE_EVENT_TYPES = valuesOf(enums.LeaseEventType);
export const KEY_MODES = valuesOf(enums.KeyMode);
export const MINTED_KEY_STATUSES = valuesOf(enums.MintedKeyStatus);
export const PROVIDER_JOB_KINDS = valuesOf(enums.ProviderJobKind);
export const PROVIDER_JOB_STATUSES = valuesOf(enums.ProviderJobStatus);
