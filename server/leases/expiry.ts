// The lease expiry job: a timer armed for the next lease due (moved earlier when a grant or an
// extension on any instance makes one due sooner) and a periodic sweep as a safety net. Each run
// expires due leases in batches of up to 1,000 a statement until none is left; the last batch's
// scan also says when the next lease falls due.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { EventPump } from '../events/pump.js';
import type { LeaseService } from './service.js';

const BATCH = 1000;

export function createExpiryJob(deps: {
  clock: Clock;
  leases: Pick<LeaseService, 'expireDueBatch' | 'nextExpiry'>;
  pump: EventPump;
  logger: Logger;
  sweepMs?: number;
}) {
  const { clock, leases, pump, logger } = deps;
  const sweepMs = deps.sweepMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  let armedFor = Infinity;
  let running: Promise<number> | undefined;
  let active = false;
  let unlisten: (() => void) | undefined;

  function arm(at: number) {
    if (!active) return;
    const due = Math.min(at, clock.now().getTime() + sweepMs);
    if (timer && due >= armedFor) return;
    clearTimeout(timer);
    armedFor = due;
    timer = setTimeout(() => void runNow(), Math.max(0, due - clock.now().getTime()));
  }

  /**
   * Expires everything due now, batch after batch; returns how many leases it expired and when the
   * next one falls due, as the last batch saw it (null: no live lease left).
   */
  async function expireBatches(): Promise<{ expired: number; next: Date | null }> {
    let expired = 0;
    for (;;) {
      const batch = await leases.expireDueBatch(BATCH);
      expired += batch.events.length;
      if (!batch.more) return { expired, next: batch.next };
    }
  }

  /** Expires everything due now; returns how many leases it expired. */
  async function expireAll(): Promise<number> {
    return (await expireBatches()).expired;
  }

  async function runNow(): Promise<number> {
    if (running) return running;
    clearTimeout(timer);
    timer = undefined;
    armedFor = Infinity;
    running = (async () => {
      // When the next lease falls due; undefined while not known (a failed run asks the database).
      let next: Date | null | undefined;
      try {
        const run = await expireBatches();
        next = run.next;
        if (run.expired) logger.info({ expired: run.expired }, 'expired leases');
        return run.expired;
      } catch (error) {
        logger.error({ err: error }, 'lease expiry failed; retrying at the next sweep');
        return 0;
      } finally {
        running = undefined;
        // A grant or an extension meanwhile arms the timer itself (the listener below), and the
        // sweep catches anything else.
        if (next === undefined) next = await leases.nextExpiry().catch(() => null);
        arm(next ? next.getTime() : Infinity);
      }
    })();
    return running;
  }

  return {
    name: 'lease-expiry',
    runNow,
    expireAll,
    start() {
      active = true;
      unlisten = pump.listen((events) => {
        for (const e of events) {
          const at = (e.details as { expiresAt?: string } | null)?.expiresAt;
          if ((e.type === 'GRANTED' || e.type === 'EXTENDED') && at) arm(new Date(at).getTime());
        }
      });
      void runNow();
    },
    async stop() {
      active = false;
      unlisten?.();
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
export type ExpiryJob = ReturnType<typeof createExpiryJob>;
