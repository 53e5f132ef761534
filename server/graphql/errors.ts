// Turns whatever a resolver threw into a GraphQL error with a stable `extensions.code`;
// anything not raised on purpose is masked as INTERNAL_SERVER_ERROR (and logged by the caller).
import { GraphQLError } from 'graphql';
import { MpkError } from '../core/errors.js';

// graphql-js reports bad variables as `Variable "$input" got invalid value ... at "input.a.b"; ...`
const VARIABLE_ERROR = /^Variable "\$(\w+)" got invalid value(?:.*? at "([^"]+)")?/s;

function fieldOfVariableError(message: string): string | undefined {
  const match = VARIABLE_ERROR.exec(message);
  if (!match) return undefined;
  const path = (match[2] ?? match[1] ?? '').replace(/\[\d+\]/g, '');
  return path.split('.').at(-1);
}

export interface MaskResult {
  error: GraphQLError;
  /** The error was unexpected: log it, with its original, where only operators can see it. */
  unexpected: unknown;
}

// By name, not `instanceof`: a bundler or test runner can load graphql-js twice (ESM and CJS),
// and an error from the other copy is still a GraphQL error.
const isGraphQLError = (e: unknown): e is GraphQLError => e instanceof Error && e.name === 'GraphQLError';
const isMpkError = (e: unknown): e is MpkError =>
  e instanceof MpkError || (e instanceof Error && e.name === 'MpkError');

export function maskError(error: unknown): MaskResult {
  const graphqlError = isGraphQLError(error) ? error : undefined;
  const original = graphqlError?.originalError ?? (graphqlError ? undefined : error);
  const location = { nodes: graphqlError?.nodes, path: graphqlError?.path };

  if (isMpkError(original)) {
    const extensions: Record<string, unknown> = { code: original.code };
    if (original.field) extensions.field = original.field;
    if (original.reason) extensions.reason = original.reason;
    return { error: new GraphQLError(original.message, { ...location, extensions }), unexpected: undefined };
  }
  if (graphqlError && (!original || isGraphQLError(original))) {
    // Errors of the GraphQL layer itself (parse, validation, variables): safe to show.
    const field = fieldOfVariableError(graphqlError.message);
    if (field !== undefined) {
      return {
        error: new GraphQLError(graphqlError.message, {
          ...location,
          extensions: { ...graphqlError.extensions, code: 'BAD_USER_INPUT', field },
        }),
        unexpected: undefined,
      };
    }
    if (graphqlError.extensions.code) return { error: graphqlError, unexpected: undefined };
    return {
      error: new GraphQLError(graphqlError.message, {
        ...location,
        extensions: { ...graphqlError.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
      }),
      unexpected: undefined,
    };
  }
  return {
    error: new GraphQLError('Unexpected error.', { ...location, extensions: { code: 'INTERNAL_SERVER_ERROR' } }),
    unexpected: original ?? error,
  };
}
