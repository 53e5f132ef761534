// Write-behind for the metering proxy: requests are recorded in batches (every 100 ms, or at 500)
// so that a busy lease is one transaction per batch, not one per request. A crash loses at most
// one batch of metering; a graceful stop flushes it. The admission cache counted each request
// when it was metered; `onSettled` tells it when the database has taken over.
import type { Logger } from '../core/logger.js';
import type { MeteredRequest, UsageService } from './service.js';

/** A metered request with where it counts: its lease, its key, its cost in micro-dollars. */
export type MeterEntry = MeteredRequest & { leaseId: string; keyId: string; micros: number };

export function createMeterBuffer(deps: {
  usage: UsageService;
  logger: Logger;
  onSettled?: (batch: readonly MeterEntry[]) => void;
  flushMs?: number;
  maxBatch?: number;
}) {
  const { usage, logger } = deps;
  const flushMs = deps.flushMs ?? 100;
  const maxBatch = deps.maxBatch ?? 500;
  let pending: MeterEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return flushing;
    flushing = flushing
      .then(() => usage.recordBatch(batch))
      .then(
        () => undefined,
        (err) => logger.error({ err, requests: batch.length }, 'could not record metered usage'),
      )
      .finally(() => deps.onSettled?.(batch));
    return flushing;
  }

  return {
    add(entry: MeterEntry) {
      pending.push(entry);
      if (pending.length >= maxBatch) void flush();
      else timer ??= setTimeout(() => void flush(), flushMs);
    },
    flush,
  };
}
export type MeterBuffer = ReturnType<typeof createMeterBuffer>;
