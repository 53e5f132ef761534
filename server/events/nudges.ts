// The "events were committed" signal between instances: Redis pub/sub when REDIS_URL is set
// (through Yoga's Redis event target), in-process otherwise. It carries no data: readers take
// the events themselves from the durable log, so a lost nudge delays delivery, never loses it.
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import type { Nudges } from './pump.js';

const TOPIC = 'mpk:lease-events';

export function createNudges(redisUrl?: string): Nudges & { close(): Promise<void> } {
  const clients = redisUrl
    ? [new Redis(redisUrl, { lazyConnect: false }), new Redis(redisUrl, { lazyConnect: false })]
    : [];
  const pubsub = createPubSub<{ [TOPIC]: [payload: { at: number }] }>(
    clients.length
      ? { eventTarget: createRedisEventTarget({ publishClient: clients[0]!, subscribeClient: clients[1]! }) }
      : {},
  );
  const iterators = new Set<AsyncIterator<unknown>>();
  return {
    publish: () => pubsub.publish(TOPIC, { at: Date.now() }),
    subscribe(onNudge) {
      const iterator = pubsub.subscribe(TOPIC)[Symbol.asyncIterator]();
      iterators.add(iterator);
      void (async () => {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          onNudge();
        }
      })();
      return () => {
        iterators.delete(iterator);
        void iterator.return?.();
      };
    },
    async close() {
      for (const iterator of iterators) await iterator.return?.();
      iterators.clear();
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
