// Waiting for something another process does: polls `check` until it holds, and says how long that took.

/** Resolves with the milliseconds `check` took to hold; throws (naming `what`) past `ms`. */
export async function until(check: () => Promise<boolean>, ms: number, what = 'condition'): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}
