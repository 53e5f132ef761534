// What PostgreSQL said when a statement failed, read from Prisma's error: its SQLSTATE, message and
// detail. Callers decide by code (MPK's own MKxxx refusals, 40001 and 40P01 to retry), never by
// matching messages.
export interface SqlState {
  code: string;
  message: string;
  detail: string | undefined;
}

interface DriverCause {
  code?: unknown;
  originalCode?: unknown;
  message?: unknown;
  detail?: unknown;
}

/** The SQLSTATE of a failed statement, if the error came from PostgreSQL. */
export function sqlState(error: unknown): SqlState | undefined {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: DriverCause } } } | null)?.meta?.driverAdapterError
    ?.cause;
  const code = cause?.originalCode ?? cause?.code;
  if (typeof code !== 'string') return undefined;
  return {
    code,
    message: String(cause?.message ?? ''),
    detail: typeof cause?.detail === 'string' ? cause.detail : undefined,
  };
}

/** PostgreSQL gave up on the transaction to let a concurrent one through: run it again. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
/** Prisma's own code for a transaction that lost a write conflict. */
const PRISMA_WRITE_CONFLICT = 'P2034';

export function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  if (state && RETRYABLE_SQLSTATES.has(state.code)) return true;
  return (error as { code?: unknown } | null)?.code === PRISMA_WRITE_CONFLICT;
}
