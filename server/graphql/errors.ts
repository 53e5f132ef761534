// Turns whatever a resolver threw into a GraphQL error with a stable `extensions.code`;
// anything not raised on purpose is masked as INTERNAL_SERVER_ERROR (and logged by the caller).
import { GraphQLError } from 'graphql';
import { MpkError } from '../core/errors.js';

// graphql-js reports bad variables as `Variable "$input" got invalid value <value> at "input.a.b";
// <reason>`, where <value> is the whole input object when one of its fields is unknown: an apiKey
// beside a typo would be sent back (and logged by clients). The value is dropped, and so is any
// value in the reason when the field's name says it holds a secret.
const VARIABLE_ERROR = /^Variable "\$(\w+)" got invalid value /;
const VARIABLE_PATH = / at "(\w+(?:\.\w+|\[\d+\])*)"$/;
const SECRET_NAME = /key|secret|token|password|credential/i;
const SUGGESTION = /\s*Did you mean .*$/s;

/** The message without graphql-js's "Did you mean ...?" (names of the schema). */
export function withoutSuggestions(error: GraphQLError): GraphQLError {
  if (!SUGGESTION.test(error.message)) return error;
  return new GraphQLError(error.message.replace(SUGGESTION, ''), {
    nodes: error.nodes,
    path: error.path,
    extensions: error.extensions,
  });
}

/** The variable error's field and a message without the value it got; undefined for other errors. */
function variableError(error: GraphQLError, suggestions: boolean): { field: string; message: string } | undefined {
  const variable = VARIABLE_ERROR.exec(error.message)?.[1];
  if (!variable) return undefined;
  // The reason is the message of the error graphql-js wrapped; without it, say nothing more.
  const reason = error.originalError?.message;
  const head = reason && error.message.endsWith(`; ${reason}`) ? error.message.slice(0, -reason.length - 2) : '';
  const path = VARIABLE_PATH.exec(head)?.[1] ?? variable;
  const field =
    path
      .replace(/\[\d+\]/g, '')
      .split('.')
      .at(-1) ?? variable;
  // Scalar reasons end in the value (`String cannot represent a non string value: <value>`).
  let said = reason && SECRET_NAME.test(field) ? reason.replace(/:[\s\S]*$/, '') : reason;
  // An enum's reason names the value it got: a key pasted into the wrong field would come back.
  said = said?.replace(/^Value [\s\S]*? does not exist in ("\w+") enum\./, 'Value does not exist in $1 enum.');
  if (said && !suggestions) said = said.replace(SUGGESTION, '');
  const where = path === variable ? '' : ` at "${path}"`;
  return { field, message: `Variable "$${variable}" got invalid value${where}${said ? `; ${said}` : ''}` };
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

/** `suggestions: false` (production) drops "Did you mean" from variable errors, for every caller. */
export function maskError(error: unknown, options: { suggestions?: boolean } = {}): MaskResult {
  const graphqlError = isGraphQLError(error) ? error : undefined;
  const original = graphqlError?.originalError ?? (graphqlError ? undefined : error);
  const location = { nodes: graphqlError?.nodes, path: graphqlError?.path };

  if (isMpkError(original)) {
    const extensions: Record<string, unknown> = { code: original.code };
    if (original.field) extensions.field = original.field;
    if (original.reason) extensions.reason = original.reason;
    if (original.retryAfterSeconds !== undefined) extensions.retryAfterSeconds = original.retryAfterSeconds;
    return { error: new GraphQLError(original.message, { ...location, extensions }), unexpected: undefined };
  }
  if (graphqlError && (!original || isGraphQLError(original))) {
    // Errors of the GraphQL layer itself (parse, validation, variables): safe to show.
    const variable = variableError(graphqlError, options.suggestions ?? true);
    if (variable !== undefined) {
      return {
        error: new GraphQLError(variable.message, {
          ...location,
          extensions: { ...graphqlError.extensions, code: 'BAD_USER_INPUT', field: variable.field },
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
