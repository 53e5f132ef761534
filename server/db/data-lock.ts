// One process at a time on an embedded database's data folder. PGlite does not lock its folder,
// and a second process on it (a CLI while the server runs) would write pages under the other's
// cache and corrupt it. The lock is a file beside the folder naming the holder's pid: created
// exclusively, removed on stop, and taken over when its pid is dead (a killed server must not
// block the next start).
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

interface LockRecord {
  pid: number;
  hostname: string;
  command: string;
  since: string;
}

export interface DataDirLock {
  path: string;
  release(): void;
}

/** Folders this process holds: a second open from the same process is refused as well. */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  // A pid reused after a container restart is often our own (PID 1): that lock is stale.
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Where /proc tells, a reused pid that is not a Node process is not the holder.
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true;
  try {
    return /node/.test(readFileSync(cmdline, 'utf8'));
  } catch {
    return true;
  }
}

function readRecord(file: string): LockRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockRecord;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock for `dataDir` (the file `<dataDir>.lock`), or throws DataDirLockedError naming
 * the process that holds it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = `${dataDir}.lock`;
  if (heldHere.has(file)) throw new DataDirLockedError(`The database in ${dataDir} is already open in this process.`);
  const record: LockRecord = {
    pid: process.pid,
    hostname: os.hostname(),
    command: process.argv.slice(1).join(' '),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(record)}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = readRecord(file);
      // The same host only: a pid from another machine (a shared volume) says nothing here.
      if (holder && (holder.hostname !== record.hostname || alive(holder.pid))) {
        throw new DataDirLockedError(
          `The embedded database in ${dataDir} is in use by process ${holder.pid} on ${holder.hostname} ` +
            `(${holder.command}, since ${holder.since}). Stop that process first; nothing was changed. ` +
            `If it is gone for good, remove ${file}.`,
        );
      }
      // Stale (its process is gone) or unreadable (a crash mid-write): take it over.
      unlinkSync(file);
    }
  }
  heldHere.add(file);
  const release = () => {
    process.off('exit', release);
    if (!heldHere.delete(file)) return;
    // Only our own record: never a lock another process took over after ours went stale.
    if (readRecord(file)?.pid === process.pid) unlinkSync(file);
  };
  // process.exit() skips async stops; the lock still goes (a SIGKILL leaves it, and it is stale).
  process.on('exit', release);
  return { path: file, release };
}
