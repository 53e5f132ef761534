// One transaction per state change, retried when PostgreSQL picks it as a deadlock victim or
// serialization loser: the retry sees the winner's committed state and decides again.
import type { Db, Tx } from './client.js';
import { isRetryable } from './errors.js';

export function inTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>, attempts = 5): Promise<T> {
  // maxWait covers queueing for a pooled connection under bursts (the embedded database has one).
  return withRetry(() => db.$transaction(work, { maxWait: 30_000, timeout: 30_000 }), attempts);
}

/** Runs `attempt` (a transaction, or one statement that is its own) again when it lost a deadlock. */
export async function withRetry<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 10));
    }
  }
}
