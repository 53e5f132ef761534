// GraphQL over WebSocket (graphql-ws), sharing Yoga's plugins, context and error masking with
// HTTP. The caller authenticates once, in `connectionParams.authorization`.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import type { Identity } from '../core/identity.js';
import type { SubscriberLimits } from '../events/limits.js';
import type { GraphQLHandler } from './yoga.js';

type Extra = Record<string, unknown> & {
  identity?: Identity | null;
};

type Enveloped = ReturnType<GraphQLHandler['getEnveloped']>;

/** graphql-ws's "Unauthorized": its client does not retry it, so a signed-out page stays so. */
export const TOKEN_EXPIRED_CLOSE = 4401;
/**
 * The caller holds as many connections as it may (a USER past MPK_MAX_CONNECTIONS_PER_USER). The
 * code graphql-ws uses for "too many": its client does not retry it, so nothing hammers the cap.
 */
export const TOO_MANY_CONNECTIONS_CLOSE = 4429;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A socket is authenticated once, at connect: it must not outlive its token, or a subscription
 * would go on after the identity behind it ran out.
 */
function closeAtExpiry(socket: WebSocket, expiresAt: Date) {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const wait = expiresAt.getTime() - Date.now();
    if (wait <= 0) return socket.close(TOKEN_EXPIRED_CLOSE, 'Token expired');
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}

export function attachWebSocket(
  server: http.Server,
  graphql: GraphQLHandler,
  authenticator: Authenticator,
  limits: SubscriberLimits,
) {
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: 1024 * 1024 });
  const disposable = useServer<Record<string, unknown> | undefined, Extra>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args as ExecutionArgs),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args as ExecutionArgs),
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        try {
          const identity = await authenticator.authenticate(typeof authorization === 'string' ? authorization : null);
          const release = limits.connection(identity);
          if (!release) {
            ctx.extra.socket.close(
              TOO_MANY_CONNECTIONS_CLOSE,
              `SUBSCRIPTION_LIMIT: at most ${limits.config.maxConnectionsPerUser} connections per user`,
            );
            return false;
          }
          if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) release();
          else ctx.extra.socket.once('close', release);
          ctx.extra.identity = identity;
          if (identity?.expiresAt) closeAtExpiry(ctx.extra.socket, identity.expiresAt);
          return true;
        } catch {
          // A bad token closes the socket (4403); no token at all connects, and each operation
          // then answers UNAUTHENTICATED like HTTP does.
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        const enveloped = graphql.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          requestId: randomUUID(),
          connectionIdentity: (ctx.extra as Extra).identity ?? null,
        });
        const args = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document: enveloped.parse(payload.query),
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: enveloped,
        };
        const errors = enveloped.validate(args.schema, args.document);
        if (errors.length > 0) return errors;
        return args as never;
      },
    },
    wss,
  );
  return {
    /** Closes every socket with 1001 (going away) and stops accepting new ones. */
    async close() {
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
