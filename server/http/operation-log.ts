// One log line per GraphQL operation, over HTTP and WebSocket alike: its name and type, who called
// (role and subject, the token's `sub`), how long it took, the request id, and the codes of any
// errors. Nothing else of the request is logged: not its variables, not its text, not a header, so
// no token or provider key can reach the log through here. A subscription logs when it starts and
// when it ends (with how long it was open).
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../core/logger.js';
import type { GraphQLContext } from '../graphql/context.js';

/** Operation names are the client's words: kept short in the log. */
const MAX_NAME = 100;

interface LoggedContext extends GraphQLContext {
  connectionIdentity?: unknown;
}

function describe(args: { document: Parameters<typeof getOperationAST>[0]; operationName?: string | null }) {
  const operation = getOperationAST(args.document, args.operationName);
  const name = operation?.name?.value ?? args.operationName ?? undefined;
  return { operation: name ? name.slice(0, MAX_NAME) : 'anonymous', type: operation?.operation ?? 'unknown' };
}

function caller(context: LoggedContext) {
  return {
    requestId: context.requestId,
    role: context.identity?.role ?? 'ANONYMOUS',
    subject: context.identity?.userId ?? null,
    transport: context.connectionIdentity !== undefined ? 'websocket' : 'http',
  };
}

/** The distinct error codes of a result (at most 5), or undefined when it has none. */
function errorCodes(errors: readonly unknown[] | undefined): string[] | undefined {
  if (!errors?.length) return undefined;
  const codes = new Set<string>();
  for (const error of errors) {
    const e = error as { extensions?: { code?: unknown }; originalError?: { code?: unknown } };
    const code = e.extensions?.code ?? e.originalError?.code;
    codes.add(typeof code === 'string' ? code.slice(0, 40) : 'INTERNAL_SERVER_ERROR');
    if (codes.size === 5) break;
  }
  return [...codes];
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

export function useOperationLog(logger: Logger): Plugin<GraphQLContext> {
  return {
    onExecute({ args }) {
      if (!logger.isLevelEnabled('info')) return;
      const started = performance.now();
      const context = args.contextValue as LoggedContext;
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? errorCodes(result.errors) : undefined;
          logger.info({ ...caller(context), ...describe(args), ms: elapsed(started), errors }, 'graphql operation');
        },
      };
    },
    onSubscribe({ args }) {
      if (!logger.isLevelEnabled('info')) return;
      const started = performance.now();
      const context = args.contextValue as LoggedContext;
      const fields = () => ({ ...caller(context), ...describe(args) });
      return {
        onSubscribeResult({ result }) {
          const refused = 'errors' in result ? errorCodes(result.errors) : undefined;
          logger.info({ ...fields(), ms: elapsed(started), errors: refused }, 'graphql subscription started');
          if (refused) return;
          return {
            onEnd() {
              logger.info({ ...fields(), ms: elapsed(started) }, 'graphql subscription ended');
            },
          };
        },
        onSubscribeError({ error }) {
          logger.info(
            { ...fields(), ms: elapsed(started), errors: errorCodes([error]) },
            'graphql subscription failed',
          );
        },
      };
    },
  };
}
