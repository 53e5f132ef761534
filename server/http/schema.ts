// Assembles the schema from every domain's GraphQL types.
import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from '../graphql/builder.js';
import '../auth/users.graphql.js';
import '../audit/audit.graphql.js';
import '../keys/keys.graphql.js';
import '../leases/leases.graphql.js';
import '../events/events.graphql.js';
import '../usage/usage.graphql.js';
import '../minting/minting.graphql.js';

export const schema = builder.toSchema();

/** The schema as checked in to schema.graphql: sorted, so diffs show real changes only. */
export const printedSchema = () => `${printSchema(lexicographicSortSchema(schema))}\n`;
