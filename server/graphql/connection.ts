// Relay-style connections (`edges { cursor node }`, `pageInfo`, `totalCount`) over a service Page.
import type { ObjectRef } from '@pothos/core';
import type { Page } from '../core/paging.js';
import { builder } from './builder.js';

export const PageInfo = builder.objectRef<Page<unknown>>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.boolean({ resolve: (page) => page.hasNextPage() }),
    hasPreviousPage: t.boolean({ resolve: (page) => page.hasPreviousPage() }),
    startCursor: t.string({ nullable: true, resolve: (page) => page.edges[0]?.cursor ?? null }),
    endCursor: t.string({ nullable: true, resolve: (page) => page.edges.at(-1)?.cursor ?? null }),
  }),
});

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer Types> ? Types : never;

export function connectionOf<T>(name: string, node: ObjectRef<BuilderTypes, T>) {
  const Edge = builder.objectRef<{ cursor: string; node: T }>(`${name}Edge`).implement({
    fields: (t) => ({
      cursor: t.exposeString('cursor'),
      node: t.field({ type: node, resolve: (edge) => edge.node as never }),
    }),
  });
  return builder.objectRef<Page<T>>(`${name}Connection`).implement({
    fields: (t) => ({
      edges: t.field({ type: [Edge], resolve: (page) => page.edges }),
      pageInfo: t.field({ type: PageInfo, resolve: (page) => page as Page<unknown> }),
      totalCount: t.int({
        description:
          'How many items the list has, all pages together. Exact up to 10,000 (totalCountIsEstimate false). ' +
          "Past that it is never counted: for an unfiltered list it is the database planner's estimate of the " +
          "table's size, for a filtered one 10,000 as a lower bound; totalCountIsEstimate is then true.",
        resolve: async (page) => (await page.totalCount()).count,
      }),
      totalCountIsEstimate: t.boolean({
        description:
          'True when totalCount is not an exact count: an estimate (an unfiltered list past 10,000 items) ' +
          'or a lower bound of 10,000 (a filtered one). False when totalCount is exact.',
        resolve: async (page) => (await page.totalCount()).estimate,
      }),
    }),
  });
}

/** The paging arguments every list takes: forward with first/after, backward with last/before. */
export const pageArgs = builder.args((t) => ({
  first: t.int({ description: 'Page size, 50 by default, 200 at most.' }),
  after: t.string({ description: 'The endCursor of the previous page.' }),
  last: t.int({ description: 'Page size going backward (with before), 200 at most.' }),
  before: t.string({ description: 'The startCursor of the next page: pages backward.' }),
}));
