// The dashboard's GraphQL client: queries and mutations over HTTP POST (with the CSRF header the
// server asks browsers for), subscriptions over graphql-ws, both carrying the bearer token; a
// normalized cache; and a session that ends, with its reason, whenever the server rejects the
// token or closes the socket because it expired.
import { createClient as createWsClient } from 'graphql-ws';
import { Client, fetchExchange, mapExchange, subscriptionExchange } from 'urql';
import { createCache } from './cache';
import { liveStatus } from './live';
import { rejectionMessage, signOut } from './session';

/** graphql-ws close codes: 4401 the token expired while connected, 4403 the token was refused. */
const TOKEN_EXPIRED = 4401;
const TOKEN_REFUSED = 4403;

export function createClient(token: string): { client: Client; dispose: () => void } {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  let connectedOnce = false;
  const ws = createWsClient({
    url: wsUrl,
    lazy: true,
    // Keep the socket between pages: subscriptions come and go as pages do.
    lazyCloseTimeout: 10_000,
    connectionParams: () => ({ authorization: `Bearer ${token}` }),
    retryAttempts: Infinity,
    shouldRetry: (event) => {
      const code = (event as CloseEvent | undefined)?.code;
      return code !== TOKEN_EXPIRED && code !== TOKEN_REFUSED;
    },
    on: {
      connecting: () => liveStatus.set(connectedOnce ? 'reconnecting' : 'connecting'),
      connected: () => {
        connectedOnce = true;
        liveStatus.set('connected');
      },
      closed: (event) => {
        const code = (event as CloseEvent | undefined)?.code;
        if (code === TOKEN_EXPIRED) signOut(rejectionMessage('EXPIRED'));
        else if (code === TOKEN_REFUSED) signOut('token rejected by the live stream');
        else liveStatus.set('reconnecting');
      },
      message: (message) => {
        if (message.type === 'next') liveStatus.event();
      },
    },
  });

  const client = new Client({
    url: '/graphql',
    preferGetMethod: false,
    requestPolicy: 'cache-and-network',
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}`, 'x-mpk-csrf': '1' } }),
    exchanges: [
      mapExchange({
        onError(error) {
          const refusal = error.graphQLErrors.find((e) => e.extensions?.code === 'UNAUTHENTICATED');
          if (refusal) signOut(rejectionMessage(refusal.extensions.reason));
        },
      }),
      createCache(),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  return {
    client,
    dispose: () => {
      void ws.dispose();
      liveStatus.reset();
    },
  };
}
