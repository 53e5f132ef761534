// The one Pothos builder every domain's GraphQL types stand on.
import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import PrismaPlugin from '@pothos/plugin-prisma';
import { GraphQLError, Kind } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { type Decimal, formatUsd } from '../core/money.js';
import type { PrismaClient } from '../db/client.js';
import {
  FRAMEWORKS,
  KEY_MODES,
  KEY_STATUSES,
  LEASE_EVENT_TYPES,
  LEASE_STATUSES,
  PROVIDERS,
  ROLES,
  TIERS,
} from '../db/enums.js';
import type PrismaTypes from '../db/generated/pothos-types.js';
import { getDatamodel } from '../db/generated/pothos-types.js';
import type { GraphQLContext } from './context.js';

export const builder = new SchemaBuilder<{
  PrismaTypes: PrismaTypes;
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    // graphql-js hands resolvers every ID argument as a string, whether the client sent 7 or "7".
    ID: { Input: string; Output: string | number | bigint };
    DateTime: { Input: Date; Output: Date };
    Decimal: { Input: string; Output: Decimal | string | number };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  plugins: [PrismaPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  prisma: {
    client: (ctx) => ctx.prisma as PrismaClient,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

const DECIMAL_TEXT = /^-?\d{1,30}(\.\d{1,30})?$/;
const decimalError = (value: unknown) =>
  new GraphQLError(
    `Decimal must be a number written as a string like "12.50", got ${JSON.stringify(value)?.slice(0, 40)}`,
    {
      extensions: { code: 'BAD_USER_INPUT' },
    },
  );

// Amounts travel as strings so that no client rounds them through a float. Input accepts a
// decimal string (or a JSON number, converted exactly as written); range and precision are the
// services' rules.
builder.scalarType('Decimal', {
  description: 'An exact decimal amount (USD), serialized as a string such as "12.50".',
  serialize: (value) => formatUsd(value as Decimal),
  parseValue: (value) => {
    const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
    if (typeof text !== 'string' || !DECIMAL_TEXT.test(text.trim())) throw decimalError(value);
    return text.trim();
  },
  parseLiteral: (node) => {
    if (
      (node.kind === Kind.STRING || node.kind === Kind.INT || node.kind === Kind.FLOAT) &&
      DECIMAL_TEXT.test(node.value)
    ) {
      return node.value;
    }
    throw decimalError('value' in node ? node.value : node.kind);
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

// The data model's enums, values from Prisma's generated enums (db/enums.ts): one source.
export const Role = builder.enumType('Role', { values: ROLES });
export const Tier = builder.enumType('Tier', { values: TIERS });
export const Provider = builder.enumType('Provider', { values: PROVIDERS });
export const Framework = builder.enumType('Framework', { values: FRAMEWORKS });
export const KeyStatus = builder.enumType('KeyStatus', { values: KEY_STATUSES });
export const KeyMode = builder.enumType('KeyMode', {
  description:
    "SHARED: leases are handed the key's own secret (or MPK's proxy in front of it). MINT: the secret is the " +
    "provider's key-management key, and each lease gets a provider key minted for it.",
  values: KEY_MODES,
});
export const LeaseStatus = builder.enumType('LeaseStatus', { values: LEASE_STATUSES });
export const LeaseEventType = builder.enumType('LeaseEventType', { values: LEASE_EVENT_TYPES });
