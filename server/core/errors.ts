// Domain errors with a stable code. Services throw these; the GraphQL layer maps them to
// `extensions.code` (and `extensions.field`), and anything else is masked as internal.
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'TIER_LIMIT_REACHED'
  | 'NO_KEY_AVAILABLE'
  | 'QUOTA_EXHAUSTED'
  | 'LEASE_NOT_ACTIVE'
  | 'LEASE_SPEND_CAP_REACHED'
  | 'RATE_LIMITED'
  | 'SUBSCRIPTION_LIMIT'
  | 'CURSOR_EXPIRED'
  | 'KEY_NOT_READY'
  | 'CONFLICT';

export class MpkError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  /** A finer, stable reason within the code (why a token was rejected, say), for clients to act on. */
  readonly reason: string | undefined;
  /** When trying again makes sense (KEY_NOT_READY), in seconds. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { field?: string; reason?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'MpkError';
    this.code = code;
    this.field = options.field;
    this.reason = options.reason;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export const badInput = (field: string, message: string) => new MpkError('BAD_USER_INPUT', message, { field });
export const notFound = (what: string) => new MpkError('NOT_FOUND', `${what} not found`);
