// Write-behind for the metering proxy: requests are recorded in batches (every 25 ms, or at 500)
// so that a busy lease is one transaction per batch, not one per request. A crash loses at most
// one batch of metering; a graceful stop flushes it.
import type { Logger } from '../core/logger.js';
import type { MeteredRequest, UsageService } from './service.js';

export function createMeterBuffer(deps: { usage: UsageService; logger: Logger; flushMs?: number; maxBatch?: number }) {
  const { usage, logger } = deps;
  const flushMs = deps.flushMs ?? 25;
  const maxBatch = deps.maxBatch ?? 500;
  let pending: (MeteredRequest & { leaseId: string })[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return flushing;
    flushing = flushing.then(() =>
      usage.recordBatch(batch).then(
        () => undefined,
        (err) => logger.error({ err, requests: batch.length }, 'could not record metered usage'),
      ),
    );
    return flushing;
  }

  return {
    add(leaseId: string, entry: MeteredRequest) {
      pending.push({ ...entry, leaseId });
      if (pending.length >= maxBatch) void flush();
      else timer ??= setTimeout(() => void flush(), flushMs);
    },
    flush,
  };
}
export type MeterBuffer = ReturnType<typeof createMeterBuffer>;
