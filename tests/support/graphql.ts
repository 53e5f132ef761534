// GraphQL over HTTP, as MPK's clients call it: the one client of the tests and the benchmarks.
import type { Role } from '../../server/auth/authenticator.js';

export interface GraphQLResponse<T = any> {
  status: number;
  data: T | null | undefined;
  errors: { message: string; path?: string[]; extensions?: { code?: string; field?: string } }[] | undefined;
  raw: string;
}

/** A server under test, in this process or its own: who it is, and how to call it. */
export interface GraphQLServer {
  url: string;
  /** A token signed with the server's secret; `now` back-dates it (an expired token: an hour ago, 60 s). */
  token(role: Role, sub?: string, extra?: { email?: string; expiresInSeconds?: number; now?: Date }): Promise<string>;
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GraphQLResponse<T>>;
}

/** POSTs one operation to `baseUrl`/graphql, with `token` as the bearer if given. */
export async function postGraphQL<T = any>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): Promise<GraphQLResponse<T>> {
  const res = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await res.text();
  const body = JSON.parse(raw);
  return { status: res.status, data: body.data, errors: body.errors, raw };
}

/** The data of a successful operation; throws with the errors otherwise (tests use `ok` instead). */
export function dataOf<T = any>(res: GraphQLResponse<T>): T {
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}
