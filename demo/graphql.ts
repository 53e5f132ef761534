// A minimal GraphQL-over-HTTP client, as the platform's frontend and workers call MPK.
export class Refusal extends Error {
  override name = 'Refusal';
  constructor(
    /** MPK's `extensions.code` (TIER_LIMIT_REACHED, NO_KEY_AVAILABLE, ...). */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type GraphQL = <T = any>(
  token: string,
  query: string,
  variables?: Record<string, unknown>,
  signal?: AbortSignal,
) => Promise<T>;

/** Runs operations against `url`/graphql; a GraphQL error is thrown as a Refusal naming its code. */
export function createGraphQLClient(url: string): GraphQL {
  return async (token, query, variables, signal) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal,
    });
    const body = (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
    const error = body.errors?.[0];
    if (error) throw new Refusal(error.extensions?.code ?? `HTTP_${res.status}`, error.message);
    return body.data;
  };
}
