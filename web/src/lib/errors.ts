// Refusals in words. The server's `extensions.code` stays visible beside them (for support);
// `extensions.field` tells a form which input to mark.
import type { CombinedError } from 'urql';
import { PROVIDER_NAMES } from './format';

export interface Refusal {
  code: string;
  message: string;
  field?: string;
  /** What the user can understand and act on. */
  words: string;
}

const WORDS: Record<string, string> = {
  UNAUTHENTICATED: 'Your sign-in is not valid any more. Sign in again.',
  FORBIDDEN: 'Your role is not allowed to do this.',
  NOT_FOUND: 'It does not exist, or it is not yours to see.',
  BAD_USER_INPUT: 'Some input is not valid.',
  TIER_LIMIT_REACHED: 'Your tier allows no more active agents.',
  NO_KEY_AVAILABLE: 'No key has room right now.',
  QUOTA_EXHAUSTED: "The key's spend limit for today or this month is reached.",
  LEASE_NOT_ACTIVE: 'The lease is not active any more.',
  CONFLICT: 'This clashes with the current state.',
  INTERNAL_SERVER_ERROR: 'The server failed unexpectedly. Try again; if it persists, tell support the code.',
  NETWORK_ERROR: 'The server cannot be reached. Check your connection.',
};

/** The first refusal of a failed operation, in words. */
export function refusalOf(error: CombinedError, context: { provider?: string | null } = {}): Refusal {
  if (error.networkError && !error.graphQLErrors.length) {
    return { code: 'NETWORK_ERROR', message: error.networkError.message, words: WORDS.NETWORK_ERROR! };
  }
  const first = error.graphQLErrors[0];
  const code = String(first?.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
  const message = first?.message ?? error.message;
  const field = typeof first?.extensions?.field === 'string' ? first.extensions.field : undefined;
  let words = WORDS[code] ?? message;
  if (code === 'TIER_LIMIT_REACHED') {
    const match = /Tier (\w+) allows (\d+)/.exec(message);
    if (match)
      words =
        `Your tier (${match[1]}) allows ${match[2]} active agent${match[2] === '1' ? '' : 's'}. ` +
        `Release one to start another.`;
  }
  if (code === 'NO_KEY_AVAILABLE' && context.provider)
    words =
      `No key available for ${PROVIDER_NAMES[context.provider] ?? context.provider} right now. ` +
      `Try again later or pick another provider.`;
  if (code === 'BAD_USER_INPUT' || code === 'LEASE_NOT_ACTIVE' || code === 'CONFLICT') words = message;
  return { code, message, field, words };
}

/** Field errors for a form: `extensions.field` (its last segment) -> message. */
export function fieldErrors(error: CombinedError | undefined): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const e of error?.graphQLErrors ?? []) {
    const field = e.extensions?.field;
    if (typeof field === 'string') errors[field.split('.')[0]!] ??= e.message;
  }
  return errors;
}
