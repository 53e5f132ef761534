// Write-behind for the metering proxy: requests are recorded in batches (every 100 ms, or at 500)
// so that a busy lease is one transaction per batch, not one per request. The admission cache
// counted each request when it was metered; `onSettled` tells it when the database has taken over.
//
// Outages: a batch that fails is kept and written again, first in line, with backoff, until the
// database takes it; what was metered meanwhile queues behind it, in order. A retry never counts
// twice: every proxied request has its own id, and the ledger keeps one row per (lease, request
// id), adding to the totals only what it inserted (so a batch that committed but whose answer was
// lost is a no-op the second time). Until written, requests stay counted in admission. Past
// `maxUnwritten` requests the proxy stops admitting (`full()`), so an outage cannot grow memory
// without bound. A graceful stop keeps retrying for a while and reports what it could not write.
// A crash loses what was not written: the batch in flight and whatever queued behind an outage.
import type { Logger } from '../core/logger.js';
import type { MeteredRequest, UsageService } from './service.js';

/** A metered request with where it counts: its lease, its key, its cost in micro-dollars. */
export type MeterEntry = MeteredRequest & { leaseId: string; keyId: string; micros: number };

/** Waits between attempts after failures: 100 ms, doubling to 5 s. */
const backoffMs = (failures: number) => Math.min(5_000, 100 * 2 ** Math.min(failures - 1, 6));

export function createMeterBuffer(deps: {
  usage: Pick<UsageService, 'recordBatch'>;
  logger: Logger;
  onSettled?: (batch: readonly MeterEntry[]) => void;
  flushMs?: number;
  maxBatch?: number;
  /** Unwritten requests beyond which the proxy refuses new ones (default 50,000). */
  maxUnwritten?: number;
}) {
  const { usage, logger } = deps;
  const flushMs = deps.flushMs ?? 100;
  const maxBatch = deps.maxBatch ?? 500;
  const maxUnwritten = deps.maxUnwritten ?? 50_000;
  /** Metered and not yet written, oldest first; the head is the batch being written. */
  let queue: MeterEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let failures = 0;
  /** While stopping: keep writing until the queue is empty or this time has passed. */
  let deadline: number | undefined;
  let wake: (() => void) | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function writeQueue() {
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      try {
        await usage.recordBatch(batch);
      } catch (err) {
        failures++;
        // The first failure and then one in ten: an outage must not flood the log.
        if (failures === 1 || failures % 10 === 0) {
          logger.error(
            { err, failures, unwritten: queue.length },
            'could not record metered usage; keeping it and trying again',
          );
        }
        if (deadline !== undefined && Date.now() >= deadline) return;
        await pause(
          deadline === undefined ? backoffMs(failures) : Math.min(backoffMs(failures), deadline - Date.now()),
        );
        continue;
      }
      if (failures > 0) logger.warn({ failures }, 'metered usage recorded again after failures');
      failures = 0;
      // Only the queue's head was written; what was added meanwhile is behind it.
      queue = queue.slice(batch.length);
      deps.onSettled?.(batch);
      // A short queue waits for the timer, so that batches stay batches; a long one goes on.
      if (queue.length < maxBatch && deadline === undefined) break;
    }
  }

  function write(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    writing ??= writeQueue().finally(() => {
      writing = undefined;
      if (queue.length > 0 && deadline === undefined) timer ??= setTimeout(() => void write(), flushMs);
    });
    return writing;
  }

  return {
    add(entry: MeterEntry) {
      queue.push(entry);
      if (writing) return;
      if (queue.length >= maxBatch) void write();
      else timer ??= setTimeout(() => void write(), flushMs);
    },
    /** Unwritten requests, and whether there are so many that new ones must wait. */
    unwritten: () => queue.length,
    full: () => queue.length >= maxUnwritten,
    /**
     * For a graceful stop: keeps writing for at most `graceMs`, then reports (and returns) what it
     * could not write, in requests and micro-dollars.
     */
    async stop(graceMs = 10_000): Promise<{ requests: number; micros: number }> {
      deadline = Date.now() + graceMs;
      clearTimeout(timer);
      timer = undefined;
      wake?.();
      while (queue.length > 0 && Date.now() < deadline) {
        await write();
        if (queue.length > 0) await pause(Math.min(100, Math.max(0, deadline - Date.now())));
      }
      const lost = { requests: queue.length, micros: queue.reduce((sum, e) => sum + e.micros, 0) };
      if (lost.requests > 0) {
        logger.error(
          { requests: lost.requests, usd: lost.micros / 1e6 },
          'stopping with metered usage that could not be recorded',
        );
      }
      return lost;
    },
  };
}
export type MeterBuffer = ReturnType<typeof createMeterBuffer>;
