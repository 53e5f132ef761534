// Input hygiene for every operation, before any resolver runs: one check for all arguments rather
// than a patch per field. A NUL byte anywhere in a string (PostgreSQL refuses it in text and
// jsonb) and values nested deeper than any real input (a 5,000-deep JSON `config` overflowed the
// stack of the code that walks it) are BAD_USER_INPUT. Both the variables and the literals written
// in the document are checked, iteratively, so that the check itself cannot overflow. In
// production, anonymous callers are not shown the schema: no introspection, no suggestions.
import { type DocumentNode, GraphQLError, Kind, NoSchemaIntrospectionCustomRule, visit } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Identity } from '../core/identity.js';
import { withoutSuggestions } from './errors.js';

/** Deeper than any input of the schema, JSON included (a key's config is a few levels). */
export const MAX_INPUT_DEPTH = 32;

export interface InputProblem {
  field: string;
  message: string;
}

const NUL = '\u0000';
const nulIn = (field: string): InputProblem => ({ field, message: `${field} must not contain NUL characters` });
const tooDeep = (field: string): InputProblem => ({
  field,
  message: `${field} is nested deeper than ${MAX_INPUT_DEPTH} levels`,
});

/** What is wrong with the operation's variables, if anything. */
export function variablesProblem(variables: unknown): InputProblem | undefined {
  if (variables === null || typeof variables !== 'object') return undefined;
  // [value, depth of the value, the nearest field name above it]
  const stack: [unknown, number, string][] = [];
  for (const [name, value] of Object.entries(variables)) stack.push([value, 0, name]);
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [value, depth, field] = item;
    if (typeof value === 'string') {
      if (value.includes(NUL)) return nulIn(field);
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_INPUT_DEPTH) return tooDeep(field);
      if (Array.isArray(value)) {
        for (const element of value) stack.push([element, depth + 1, field]);
      } else {
        for (const [key, element] of Object.entries(value)) {
          if (key.includes(NUL)) return nulIn(field);
          stack.push([element, depth + 1, key]);
        }
      }
    }
  }
  return undefined;
}

/** What is wrong with the values written in the document (arguments, defaults), if anything. */
export function documentProblem(document: DocumentNode): InputProblem | undefined {
  let problem: InputProblem | undefined;
  const names: string[] = [];
  let depth = 0;
  const named = {
    enter: (node: { name: { value: string } }) => void names.push(node.name.value),
    leave: () => void names.pop(),
  };
  const nested = {
    enter: () => {
      depth += 1;
      if (depth > MAX_INPUT_DEPTH) problem ??= tooDeep(names.at(-1) ?? 'input');
    },
    leave: () => {
      depth -= 1;
    },
  };
  // graphql-js's visit keeps its own stack: deep documents do not recurse here.
  visit(document, {
    [Kind.ARGUMENT]: named,
    [Kind.OBJECT_FIELD]: named,
    [Kind.OBJECT]: nested,
    [Kind.LIST]: nested,
    [Kind.STRING]: (node) => {
      if (node.value.includes(NUL)) problem ??= nulIn(names.at(-1) ?? 'input');
    },
  });
  return problem;
}

export const inputError = (problem: InputProblem) =>
  new GraphQLError(problem.message, { extensions: { code: 'BAD_USER_INPUT', field: problem.field } });

/** The HTTP caller, identified as soon as the params are read: validation needs to know it. */
export type Caller = { identity: Identity | null } | { error: unknown };

export interface CallerContext {
  /** Set for operations over WebSocket: the identity from the connection's `connectionParams`. */
  connectionIdentity?: Identity | null;
  caller?: Caller;
}

/** No token, or a bad one. */
function isAnonymous(context: CallerContext): boolean {
  if (context.connectionIdentity !== undefined) return context.connectionIdentity === null;
  return !context.caller || !('identity' in context.caller) || context.caller.identity === null;
}

export interface InputHygieneOptions {
  /** Hide the schema from anonymous callers. */
  production: boolean;
  /** The caller of an HTTP request; throws for a bad token. */
  identify: (authorization: string | null, query: string | undefined) => Promise<Identity | null>;
}

export function inputHygiene(options: InputHygieneOptions): Plugin<CallerContext> {
  const check = (args: { document: DocumentNode; variableValues?: unknown }) =>
    variablesProblem(args.variableValues) ?? documentProblem(args.document);
  return {
    async onParams({ params, request, context }) {
      const server = context as CallerContext;
      if (server.connectionIdentity !== undefined) return;
      try {
        server.caller = { identity: await options.identify(request.headers.get('authorization'), params.query) };
      } catch (error) {
        // Thrown where the context is built, after validation, as before: UNAUTHENTICATED.
        server.caller = { error };
      }
    },
    onValidate({ context, addValidationRule }) {
      if (!options.production || !isAnonymous(context)) return;
      addValidationRule(NoSchemaIntrospectionCustomRule);
      return ({ result, setResult }) => {
        if (result.length) setResult(result.map((error) => withoutSuggestions(error as GraphQLError)));
      };
    },
    onExecute({ args, setResultAndStopExecution }) {
      const problem = check(args);
      if (problem) setResultAndStopExecution({ errors: [inputError(problem)] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const problem = check(args);
      if (problem) setResultAndStopExecution({ errors: [inputError(problem)] });
    },
  };
}
