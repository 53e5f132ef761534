// One scheduler across instances: the instance holding a PostgreSQL advisory lock runs the jobs.
// The lock lives on a dedicated connection; when the holder dies its connection closes, the lock
// is released, and another instance, trying every few seconds, takes over.
import pg from 'pg';
import type { Logger } from '../core/logger.js';

export interface LeaderElection {
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
}

/** The embedded database serves one process: that process always leads. */
export function soleLeader(onChange: (leader: boolean) => void): LeaderElection {
  let leader = false;
  return {
    async start() {
      leader = true;
      onChange(true);
    },
    async stop() {
      if (leader) onChange(false);
      leader = false;
    },
    isLeader: () => leader,
  };
}

export function advisoryLockLeader(options: {
  url: string;
  lockKey: number;
  onChange: (leader: boolean) => void;
  logger: Logger;
  /** How often a follower tries the lock and a leader checks its connection. */
  intervalMs?: number;
}): LeaderElection {
  const { url, lockKey, onChange, logger } = options;
  const intervalMs = options.intervalMs ?? 2000;
  let client: pg.Client | undefined;
  let leader = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const setLeader = (value: boolean) => {
    if (value === leader) return;
    leader = value;
    logger.info(
      { leader },
      value ? 'this instance now runs the scheduler' : 'this instance no longer runs the scheduler',
    );
    onChange(value);
  };

  async function dropConnection() {
    const old = client;
    client = undefined;
    setLeader(false);
    await old?.end().catch(() => {});
  }

  async function tick() {
    try {
      if (!client) {
        const fresh = new pg.Client({ connectionString: url, application_name: 'mpk-scheduler-lock' });
        fresh.on('error', () => void dropConnection());
        await fresh.connect();
        client = fresh;
      }
      if (leader) {
        await client.query('SELECT 1');
      } else {
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lockKey]);
        setLeader(rows[0]!.ok);
      }
    } catch (error) {
      logger.warn({ err: error }, 'scheduler lock connection failed; retrying');
      await dropConnection();
    } finally {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    }
  }

  return {
    async start() {
      await tick();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (client && leader) await client.query('SELECT pg_advisory_unlock($1)', [lockKey]).catch(() => {});
      await dropConnection();
    },
    isLeader: () => leader,
  };
}
