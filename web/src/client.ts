// The dashboard's GraphQL client: queries over HTTP, subscriptions over graphql-ws, both carrying
// the bearer token the admin pasted in.
import { createClient as createWsClient } from 'graphql-ws';
import { cacheExchange, Client, fetchExchange, subscriptionExchange } from 'urql';

export const TOKEN_KEY = 'mpk.token';

export const readToken = () => localStorage.getItem(TOKEN_KEY) ?? '';

export function createClient(token: string): Client {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  const ws = createWsClient({ url: wsUrl, lazy: true, connectionParams: () => ({ authorization: `Bearer ${token}` }) });
  return new Client({
    url: '/graphql',
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
}
