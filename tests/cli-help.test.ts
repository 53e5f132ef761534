// Every command-line tool answers --help with its usage (exit 0), and a bad flag with the reason
// and the usage (exit 2), never a stack trace.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

const cli = (file: string, args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });

/** Two processes at a time: each loads TypeScript through tsx, and the machine has two cores. */
async function twoAtATime<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  const next = async (): Promise<void> => {
    const i = results.length;
    if (i >= jobs.length) return;
    results.length++;
    results[i] = await jobs[i]!();
    return next();
  };
  await Promise.all([next(), next()]);
  return results;
}

describe('command-line tools', () => {
  it('every one answers --help with its usage, and a bad flag without a stack trace', async () => {
    const files = [
      'server/main.ts',
      'server/cli/token.ts',
      'server/cli/migrate.ts',
      'server/cli/keyring-rotate.ts',
      'server/cli/db-migration.ts',
      'server/cli/print-schema.ts',
      'server/cli/mpk.ts',
    ];
    const runs = await twoAtATime(files.map((file) => () => cli(file, ['--help'])));
    runs.forEach((run, i) => {
      expect(run.code, files[i]).toBe(0);
      expect(run.stdout, files[i]).toMatch(/^usage: /);
      expect(run.stderr, files[i]).toBe('');
    });
    const bad = await twoAtATime(
      files.map(
        (file) => () => cli(file, file.endsWith('mpk.ts') ? ['keys', 'list', '--no-such-flag'] : ['--no-such-flag']),
      ),
    );
    bad.forEach((run, i) => {
      expect(run.code, files[i]).toBe(2);
      expect(run.stderr, files[i]).toMatch(/Unknown option '--no-such-flag'/);
      expect(run.stderr, files[i]).not.toMatch(/^\s+at /m);
    });
  }, 120_000);
});
