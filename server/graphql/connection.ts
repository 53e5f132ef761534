// Relay-style connections (`edges { cursor node }`, `pageInfo`, `totalCount`) over a service Page.
import type { ObjectRef } from '@pothos/core';
import type { Page } from '../core/paging.js';
import { builder } from './builder.js';

export const PageInfo = builder
  .objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo')
  .implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean('hasNextPage'),
      endCursor: t.exposeString('endCursor', { nullable: true }),
    }),
  });

export function connectionOf<T>(name: string, node: ObjectRef<any, T>) {
  const Edge = builder.objectRef<{ cursor: string; node: T }>(`${name}Edge`).implement({
    fields: (t) => ({
      cursor: t.exposeString('cursor'),
      node: t.field({ type: node, resolve: (edge) => edge.node as never }),
    }),
  });
  return builder.objectRef<Page<T>>(`${name}Connection`).implement({
    fields: (t) => ({
      edges: t.field({ type: [Edge], resolve: (page) => page.edges }),
      pageInfo: t.field({
        type: PageInfo,
        resolve: (page) => ({ hasNextPage: page.hasNextPage, endCursor: page.edges.at(-1)?.cursor ?? null }),
      }),
      totalCount: t.int({ resolve: (page) => page.totalCount() }),
    }),
  });
}

/** The `first`/`after` arguments every list takes. */
export const pageArgs = builder.args((t) => ({
  first: t.int({ description: 'Page size, 50 by default, 200 at most.' }),
  after: t.string({ description: 'The endCursor of the previous page.' }),
}));
