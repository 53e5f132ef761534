// The write-behind queue through a database outage, with a recorder that fails on demand (the
// outage itself, on a real PostgreSQL, is tests/postgres-outage.test.ts): nothing is dropped,
// order is kept, the proxy is told to stop admitting past the bound, and a stop reports the rest.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import { Decimal } from '../core/money.js';
import { createMeterBuffer, type MeterEntry } from './meter-buffer.js';

const entry = (i: number): MeterEntry => ({
  leaseId: 'lease',
  keyId: 'key',
  micros: 10,
  requestId: `r${i}`,
  costUsd: new Decimal('0.00001'),
  costSource: 'PROVIDER',
  model: null,
  promptTokens: null,
  completionTokens: null,
});

function harness(options: { maxUnwritten?: number } = {}) {
  const written: string[] = [];
  const settled: string[] = [];
  const logs: string[] = [];
  const state = { down: false, attempts: 0 };
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _e, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  );
  const meter = createMeterBuffer({
    usage: {
      async recordBatch(batch) {
        state.attempts++;
        if (state.down) throw new Error('connection refused');
        written.push(...batch.map((b) => b.requestId));
        return batch.length;
      },
    },
    logger,
    onSettled: (batch) => settled.push(...batch.map((b) => b.requestId)),
    flushMs: 5,
    maxBatch: 10,
    ...options,
  });
  return { meter, written, settled, logs, state };
}

describe('metering through an outage', () => {
  it('keeps failed batches and writes everything, in order, once the database is back', async () => {
    const { meter, written, settled, state, logs } = harness();
    state.down = true;
    for (let i = 0; i < 35; i++) meter.add(entry(i));
    await expect.poll(() => state.attempts).toBeGreaterThan(3);
    expect(written).toEqual([]);
    // Still counted in admission: nothing was settled.
    expect(settled).toEqual([]);
    for (let i = 35; i < 50; i++) meter.add(entry(i));
    expect(meter.unwritten()).toBe(50);
    state.down = false;
    await expect.poll(() => written.length, { timeout: 10_000 }).toBe(50);
    expect(written).toEqual(Array.from({ length: 50 }, (_, i) => `r${i}`));
    expect(settled).toEqual(written);
    expect(meter.unwritten()).toBe(0);
    // One error line for the outage, not one per attempt.
    expect(logs.filter((l) => l.includes('could not record metered usage')).length).toBeLessThanOrEqual(2);
  });

  it('says it is full past its bound, and not once the queue is written', async () => {
    const { meter, state, written } = harness({ maxUnwritten: 20 });
    state.down = true;
    for (let i = 0; i < 19; i++) meter.add(entry(i));
    expect(meter.full()).toBe(false);
    meter.add(entry(19));
    expect(meter.full()).toBe(true);
    state.down = false;
    await expect.poll(() => written.length, { timeout: 10_000 }).toBe(20);
    expect(meter.full()).toBe(false);
  });

  it('a stop retries for its grace period, then reports what it could not write', async () => {
    const { meter, state } = harness();
    state.down = true;
    for (let i = 0; i < 12; i++) meter.add(entry(i));
    const started = Date.now();
    const lost = await meter.stop(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(lost).toEqual({ requests: 12, micros: 120 });

    const recovered = harness();
    recovered.state.down = true;
    for (let i = 0; i < 12; i++) recovered.meter.add(entry(i));
    setTimeout(() => (recovered.state.down = false), 150);
    expect(await recovered.meter.stop(5_000)).toEqual({ requests: 0, micros: 0 });
    expect(recovered.written).toHaveLength(12);
  });
});
