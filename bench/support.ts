// Shared by the benchmarks: a scratch PostgreSQL database and an MPK server in its own process
// (so the load generator never shares its event loop), both from the test harness (tests/support),
// and latency statistics.
import { readdir, readFile } from 'node:fs/promises';
import { type ScratchDatabase, scratchDatabase } from '../tests/support/db.js';
import { startServerProcess } from '../tests/support/process.js';

/** An empty database beside BENCH_DATABASE_URL (default the local server); the server migrates it. */
export const benchDatabase = () =>
  scratchDatabase(process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres', 'mpk_bench');

/**
 * MPK on `db` in its own process (with `env` besides), its errors in this terminal;
 * BENCH_SERVER_NODE_ARGS passes flags to its node.
 */
export const startServer = (db: ScratchDatabase, env: Record<string, string> = {}) =>
  startServerProcess(
    { DATABASE_URL: db.url, ...env },
    { nodeArgs: process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean), stderr: 'inherit', timeoutMs: 120_000 },
  );

/** Resident memory of process `pid`, in bytes (Linux /proc). */
export async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

export const ms = (value: number) => `${value.toFixed(2)} ms`;

/** Runs `task(i)` for i in [0, total) with `concurrency` workers; returns the wall time in ms. */
export async function pool(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await task(next++);
    }),
  );
  return performance.now() - started;
}

/**
 * CPU time (ms) used so far by this process, the server, and PostgreSQL's processes (Linux
 * /proc), to tell where a figure's time goes on a shared machine.
 */
export async function cpuTimes(serverPid: number): Promise<{ bench: number; server: number; postgres: number }> {
  const ticks = async (pid: number | string) => {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return {
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        cpu: Number(fields[11]) + Number(fields[12]),
      };
    } catch {
      return { comm: '', cpu: 0 };
    }
  };
  let postgres = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = await ticks(entry);
    if (t.comm === 'postgres') postgres += t.cpu;
  }
  const msPerTick = 1000 / 100;
  return {
    bench: (await ticks(process.pid)).cpu * msPerTick,
    server: (await ticks(serverPid)).cpu * msPerTick,
    postgres: postgres * msPerTick,
  };
}
