// Graceful stop for the processes MPK runs (the server, the demo).

/**
 * Calls `stop` on the first SIGTERM or SIGINT, then exits. Installed before anything starts: a
 * signal that arrives during start-up is held until `started()`, so the embedded database is never
 * cut off in the middle of a migration. Further signals while stopping are ignored.
 */
export function stopOnSignal(stop: (signal: string) => Promise<void>) {
  let requested: string | undefined;
  let ready = false;
  const shutdown = async (signal: string) => {
    await stop(signal);
    process.exit(0);
  };
  const onSignal = (signal: string) => {
    if (requested) return;
    requested = signal;
    if (ready) void shutdown(signal);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  return {
    /** Start-up is over: stops now if a signal came during it. */
    async started() {
      ready = true;
      if (requested) await shutdown(requested);
    },
  };
}
