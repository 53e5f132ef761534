// GraphQL over HTTP: Yoga with the caller's identity in the context, stable error codes, depth
// and cost limits, input hygiene, CSRF prevention and CORS for browsers.
import { randomUUID } from 'node:crypto';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { Authenticator } from '../auth/authenticator.js';
import type { Identity } from '../core/identity.js';
import type { Logger } from '../core/logger.js';
import type { GraphQLContext, ServiceRegistry } from '../graphql/context.js';
import { maskError } from '../graphql/errors.js';
import { type Caller, inputHygiene } from '../graphql/hygiene.js';
import { isIntrospectionOnly } from '../graphql/introspection.js';
import { useOperationLog } from './operation-log.js';
import { schema } from './schema.js';

export interface YogaDeps {
  authenticator: Authenticator;
  services: ServiceRegistry;
  prisma: object;
  logger: Logger;
  /** More plugins, run after the built-in ones (the per-user mutation rate limit, metrics). */
  plugins?: (Plugin<GraphQLContext> | Plugin)[];
  /** Origins a browser may call /graphql from (with credentials); none = same origin only. */
  corsOrigins?: readonly string[];
  /** Production: anonymous callers get no introspection and no "Did you mean" suggestions. */
  production?: boolean;
}

export interface ServerContext {
  requestId?: string;
  /** Set for operations over WebSocket: the identity from the connection's `connectionParams`. */
  connectionIdentity?: Identity | null;
  /** The HTTP caller, identified by inputHygiene once the params are read. */
  caller?: Caller;
}

export const CSRF_HEADER = 'x-mpk-csrf';

/**
 * A subscription over server-sent events ends when its client goes away: the request's abort
 * signal is handed to the executor, which then returns the event stream (its listener and
 * everything it holds are let go at once). Without it the stream was only noticed gone at its
 * next event. Queries and mutations are not cancelled this way: a mutation runs to its end.
 * (Over WebSocket, graphql-ws returns the stream on `complete` and on close.)
 */
function releaseSubscriptionsOnDisconnect(): Plugin<{ request?: Request }> {
  return {
    onSubscribe({ args }) {
      const signal = args.contextValue.request?.signal;
      if (signal) (args as { signal?: AbortSignal }).signal = signal;
    },
  };
}

export function createGraphQLHandler(deps: YogaDeps) {
  const { authenticator, services, prisma, logger } = deps;
  const corsOrigins = new Set(deps.corsOrigins ?? []);

  /** The caller; a bad token is refused, unless the operation only reads the schema. */
  async function identify(authorization: string | null, query: string | undefined): Promise<Identity | null> {
    try {
      return await authenticator.authenticate(authorization);
    } catch (error) {
      if (isIntrospectionOnly(query)) return null;
      throw error;
    }
  }

  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL is served by http/graphiql.ts from the npm package (Yoga's own loads from a CDN).
    graphiql: false,
    logging: false,
    maskedErrors: {
      maskError: (error) => {
        const masked = maskError(error, { suggestions: !deps.production });
        if (masked.unexpected) logger.error({ err: masked.unexpected }, 'unexpected error in a GraphQL operation');
        return masked.error;
      },
    },
    // Same origin needs no CORS: only listed origins get Access-Control-Allow-Origin (and with it
    // credentials); any other origin gets no CORS headers, so its page cannot read the answer.
    cors: (request) => {
      const origin = request.headers.get('origin');
      if (!origin || !corsOrigins.has(origin)) return false;
      return {
        origin,
        credentials: true,
        methods: ['GET', 'POST'],
        allowedHeaders: ['authorization', 'content-type', 'x-request-id', CSRF_HEADER],
        maxAge: 600,
      };
    },
    context: async ({ request, params, requestId, connectionIdentity, caller }): Promise<GraphQLContext> => {
      let identity = connectionIdentity;
      if (identity === undefined) {
        if (caller && 'error' in caller) throw caller.error;
        identity = caller ? caller.identity : await identify(request.headers.get('authorization'), params?.query);
      }
      return { identity, requestId: requestId ?? randomUUID(), services, prisma };
    },
    plugins: [
      useOperationLog(logger),
      releaseSubscriptionsOnDisconnect(),
      inputHygiene({ production: deps.production ?? false, identify }),
      useCSRFPrevention({ requestHeaders: [CSRF_HEADER, 'x-graphql-yoga-csrf'] }),
      EnvelopArmorPlugin({
        // Introspection counts too (deeply nested __type queries are a known DoS); 15 still admits
        // the full introspection query GraphiQL and codegen send.
        maxDepth: { n: 15, ignoreIntrospection: false, flattenFragments: true },
        // Armor's cost is a shape heuristic (nesting multiplies it), not a row count: the limit
        // admits the dashboard's richest page query (a key's detail page, ~6,500) with room, and
        // a test holds every dashboard document to it.
        costLimit: { maxCost: 15_000 },
        maxAliases: { n: 30 },
        maxDirectives: { n: 30 },
        maxTokens: { n: 2000 },
        blockFieldSuggestion: { enabled: false },
      }),
      ...(deps.plugins ?? []),
    ],
  });
}
export type GraphQLHandler = ReturnType<typeof createGraphQLHandler>;
