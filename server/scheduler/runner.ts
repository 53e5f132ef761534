// A small runner: the jobs app.ts registers run while this instance leads, and stop when it
// stops leading or shuts down.
import type { Logger } from '../core/logger.js';
import type { LeaderElection } from './leader.js';

export interface Job {
  name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

export function createScheduler(deps: {
  jobs: Job[];
  logger: Logger;
  elect: (onChange: (leader: boolean) => void) => LeaderElection;
}) {
  const { jobs, logger } = deps;
  let running = Promise.resolve();
  const election = deps.elect((leader) => {
    // Starts and stops are chained so that a quick loss and regain never overlap.
    running = running.then(async () => {
      for (const job of jobs) {
        try {
          await (leader ? job.start() : job.stop());
        } catch (error) {
          logger.error({ err: error, job: job.name }, `scheduler job failed to ${leader ? 'start' : 'stop'}`);
        }
      }
    });
  });
  return {
    start: () => election.start(),
    isLeader: () => election.isLeader(),
    async stop() {
      await election.stop();
      await running;
    },
  };
}
export type Scheduler = ReturnType<typeof createScheduler>;
