// keyUsage: a key's active lease count and spend, pushed when a lease event touches the key, at
// most four times a second per key. One read of the key serves every subscriber of this instance.
// A stream lets go at once when cancelled (events/stream.ts).

import { authorize } from '../auth/permissions.js';
import { notFound } from '../core/errors.js';
import type { Identity } from '../core/identity.js';
import { isUuid } from '../core/ids.js';
import type { Db, ManagedKey } from '../db/client.js';
import { createSubscriberLimits, type SubscriberLimits } from '../events/limits.js';
import type { EventPump } from '../events/pump.js';
import { releasableStream } from '../events/stream.js';

export const KEY_USAGE_INTERVAL_MS = 250;

type Listener = (key: ManagedKey) => void;

export function createKeyUsageFeed(deps: { db: Db; pump: EventPump; limits?: SubscriberLimits }) {
  const { db, pump, limits = createSubscriberLimits() } = deps;
  const byKey = new Map<string, Set<Listener>>();
  const everyKey = new Set<Listener>();
  const lastSent = new Map<string, number>();
  const pending = new Map<string, NodeJS.Timeout>();

  async function send(keyId: string) {
    pending.delete(keyId);
    lastSent.set(keyId, Date.now());
    const key = await db.managedKey.findUnique({ where: { id: keyId } }).catch(() => null);
    if (!key) return;
    for (const listener of [...(byKey.get(keyId) ?? []), ...everyKey]) listener(key);
  }

  /** Coalesces changes: the first goes out at once, the rest at most every 250 ms. */
  function changed(keyId: string) {
    if (pending.has(keyId) || (!byKey.has(keyId) && everyKey.size === 0)) return;
    const wait = Math.max(0, (lastSent.get(keyId) ?? 0) + KEY_USAGE_INTERVAL_MS - Date.now());
    pending.set(
      keyId,
      setTimeout(() => void send(keyId), wait),
    );
  }

  pump.listen((events) => {
    for (const keyId of new Set(events.map((e) => e.keyId))) changed(keyId);
  });

  function stream(actor: Identity, keyId: string | null, first: ManagedKey | null): AsyncIterableIterator<ManagedKey> {
    const release = limits.subscription(actor);
    return releasableStream(async function* ({ signal, wait, wake }) {
      const queue = new Map<string, ManagedKey>();
      const listener: Listener = (key) => {
        queue.set(key.id, key);
        wake();
      };
      const set = keyId ? (byKey.get(keyId) ?? byKey.set(keyId, new Set()).get(keyId)!) : everyKey;
      set.add(listener);
      try {
        if (first) yield first;
        while (!signal.aborted) {
          const next = queue.values().next();
          if (next.done) {
            await wait();
            continue;
          }
          queue.delete(next.value.id);
          yield next.value;
        }
      } finally {
        set.delete(listener);
        if (keyId && set.size === 0) byKey.delete(keyId);
      }
    }, release);
  }

  return {
    async keyUsage(actor: Identity | null, keyId: string | null): Promise<AsyncIterable<ManagedKey>> {
      const caller = authorize(actor, 'keyUsage');
      if (keyId === null) return stream(caller, null, null);
      const key = isUuid(keyId) ? await db.managedKey.findUnique({ where: { id: keyId } }) : null;
      if (!key) throw notFound('Managed key');
      return stream(caller, keyId, key);
    },
    stop() {
      for (const timer of pending.values()) clearTimeout(timer);
      pending.clear();
    },
  };
}
export type KeyUsageFeed = ReturnType<typeof createKeyUsageFeed>;
