// A job the scheduler runs every so often (provider reconciliation, history partitions): one run at
// a time (a run asked for while one is going joins it), errors logged rather than thrown from the
// timer, and a stop that waits for the run in progress.
import type { Logger } from './logger.js';

export function periodicJob<T>(options: {
  name: string;
  intervalMs: number;
  logger: Logger;
  /** What the log says when a run fails. */
  failure: string;
  /** Run once as soon as the job starts, not only after the first interval. */
  atStart?: boolean;
  run: () => Promise<T>;
}) {
  const { logger, failure } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<T> | undefined;

  const runOnce = () => (running ??= options.run().finally(() => (running = undefined)));
  const runLogged = () => void runOnce().catch((err) => logger.error({ err }, failure));

  return {
    name: options.name,
    runOnce,
    start() {
      if (options.atStart) runLogged();
      timer = setInterval(runLogged, options.intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
