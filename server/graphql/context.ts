// What every resolver receives. Domains add their service to `ServiceRegistry` by module
// augmentation in their own *.graphql.ts, so this floor never imports a domain.
import type { Identity } from '../core/identity.js';

// An interface, empty here: each domain's *.graphql.ts merges its service into it.
// biome-ignore lint/suspicious/noEmptyInterface: declaration merging needs an interface
export interface ServiceRegistry {}

export interface GraphQLContext {
  identity: Identity | null;
  requestId: string;
  services: ServiceRegistry;
  /** The Prisma client, for plugin-prisma's relation loading only; typed loosely on purpose. */
  prisma: object;
}
