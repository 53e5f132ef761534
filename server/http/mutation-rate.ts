// Per-caller rate limit on mutations (HTTP and WebSocket alike): a token bucket per user of the
// limited roles (USER by default; the platform's WORKER and ADMIN services are not limited unless
// configured). Each root field of a mutation takes a token, so aliases count. Over the limit, the
// operation is not run: RATE_LIMITED with `retryAfterSeconds`, and over HTTP a 429 with Retry-After.
// The refusal is sent when the next token is due (at most a second later): a client that loops on
// its refusals without waiting is thereby slowed to the limit, instead of taking the server's time
// from everyone else with refusals as fast as it can send. Per instance, in memory.
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  getOperationAST,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Limits } from '../config.js';
import type { ErrorCode } from '../core/errors.js';
import type { BucketLimit, TokenBuckets } from '../core/rate-limit.js';
import type { GraphQLContext } from '../graphql/context.js';

/** Root fields of a selection set, through fragments: what an operation asks the server to do. */
function rootFieldCount(document: DocumentNode, selectionSet: SelectionSetNode, depth = 0): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value !== '__typename') count++;
    } else if (depth < 10) {
      const set =
        selection.kind === Kind.INLINE_FRAGMENT
          ? selection.selectionSet
          : document.definitions.find(
              (d): d is FragmentDefinitionNode =>
                d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value,
            )?.selectionSet;
      if (set) count += rootFieldCount(document, set, depth + 1);
    }
  }
  return count;
}

/** The longest a refusal is held back. */
export const MAX_REFUSAL_DELAY_MS = 1000;

export function rateLimitedError(retryAfterSeconds: number, websocket: boolean) {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new GraphQLError(`Too many mutations: try again in ${seconds} s`, {
    extensions: {
      code: 'RATE_LIMITED' satisfies ErrorCode,
      retryAfterSeconds: seconds,
      // Yoga turns this into the HTTP status and header, and leaves it out of the body.
      ...(websocket ? {} : { http: { status: 429, headers: { 'retry-after': String(seconds) } } }),
    },
  });
}

export function useMutationRateLimit(deps: {
  limits: Pick<Limits, 'mutationBurst' | 'mutationsPerSecond' | 'mutationLimitedRoles'>;
  buckets: TokenBuckets;
}): Plugin<GraphQLContext> {
  const { limits, buckets } = deps;
  const limit: BucketLimit = { capacity: limits.mutationBurst, perSecond: limits.mutationsPerSecond };
  const roles = new Set<string>(limits.mutationLimitedRoles);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const identity = (args.contextValue as GraphQLContext).identity;
      if (!identity || !roles.has(identity.role)) return;
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'mutation') return;
      const cost = Math.min(limit.capacity, Math.max(1, rootFieldCount(args.document, operation.selectionSet)));
      const wait = buckets.take(`${identity.role}:${identity.userId}`, limit, cost);
      if (!wait) return;
      const delayMs = Math.min(wait * 1000, MAX_REFUSAL_DELAY_MS);
      const websocket = (args.contextValue as { connectionIdentity?: unknown }).connectionIdentity !== undefined;
      // Only a refusal waits: every other operation goes on synchronously.
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          setResultAndStopExecution({ errors: [rateLimitedError(wait - delayMs / 1000, websocket)] });
          resolve();
        }, delayMs),
      );
    },
  };
}
