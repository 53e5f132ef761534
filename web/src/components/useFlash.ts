// Rows that change flash briefly: each record's signature is remembered, and a record whose
// signature differs from the last list (or that is new in the same list) gets a flash class. A
// first load, another page or other filters is a different list: nothing flashes.
//
// No state and no timers, so a flash costs no extra render: the class is set in the render that
// shows the change, and two class names alternate so that a second change replays the animation
// (a CSS animation runs once, when its class appears). An old class left on a row does nothing.
import { useMemo, useRef } from 'react';

const FLASH_MS = 1200;

/** Rows a live table renders at once on a first load; the rest render in the background. */
export const FIRST_ROWS = 15;

interface Flashes {
  signatures: Map<string, string>;
  changedAt: Map<string, number>;
  parity: Map<string, boolean>;
}

export function useFlash<T>(
  records: readonly T[],
  idOf: (record: T) => string,
  signatureOf: (record: T) => string,
): (record: T) => string | undefined {
  const state = useRef<Flashes | null>(null);

  useMemo(() => {
    const previous = state.current;
    const signatures = new Map(records.map((r) => [idOf(r), signatureOf(r)]));
    const next: Flashes = {
      signatures,
      changedAt: previous?.changedAt ?? new Map(),
      parity: previous?.parity ?? new Map(),
    };
    state.current = next;
    const kept = previous ? [...signatures.keys()].filter((id) => previous.signatures.has(id)).length : 0;
    if (!previous || kept === 0 || kept < signatures.size / 2) return;
    const now = Date.now();
    for (const [id, signature] of signatures) {
      if (previous.signatures.get(id) === signature) continue;
      next.changedAt.set(id, now);
      next.parity.set(id, !next.parity.get(id));
    }
    for (const [id, at] of next.changedAt) if (now - at > FLASH_MS || !signatures.has(id)) next.changedAt.delete(id);
  }, [records, idOf, signatureOf]);

  return (record) => {
    const id = idOf(record);
    const at = state.current?.changedAt.get(id);
    if (at === undefined || Date.now() - at > FLASH_MS) return undefined;
    return state.current!.parity.get(id) ? 'mpk-flash-a' : 'mpk-flash-b';
  };
}
