// The event log read as the pump and every replay read it, against writers whose transactions
// commit out of order (some roll back) while a write transaction in another database stays open
// the whole time: the tailer must see every committed event once, in cursor order, and must not
// wait for the other database's transaction to end.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../../tests/support/db.js';
import { PrismaClient } from '../db/client.js';
import { type EventCursor, readEvents, START } from './log.js';

const WRITERS = 8;
const TRANSACTIONS_EACH = 40;

describe.skipIf(!process.env.TEST_DATABASE_URL)('readEvents under concurrent writers', () => {
  let database: TestDatabase;
  let db: PrismaClient;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url, max: 2 }) });
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  it('sees every committed event once, in cursor order, not held back by another database', async () => {
    // The server's oldest running transaction for the whole test, in another database.
    const elsewhere = new pg.Client({ connectionString: databaseUrl(database.url) });
    await elsewhere.connect();
    await elsewhere.query('BEGIN');
    await elsewhere.query('SELECT pg_current_xact_id()');

    // When the writers finished (0 while they write).
    let writersDone = 0;
    const writer = async () => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        for (let t = 0; t < TRANSACTIONS_EACH; t++) {
          await client.query('BEGIN');
          // Each transaction takes its id, waits, writes one to three events, waits, then ends: so
          // transactions commit in another order than their ids.
          await client.query('SELECT pg_current_xact_id()');
          await sleep(Math.random() * 15);
          for (let e = 0, n = 1 + Math.floor(Math.random() * 3); e < n; e++)
            await client.query(
              `INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "stopAgent")
               VALUES ('GRANTED', now(), $1, 'user-log', $2, false)`,
              [randomUUID(), randomUUID()],
            );
          await sleep(Math.random() * 15);
          await client.query(Math.random() < 0.1 ? 'ROLLBACK' : 'COMMIT');
        }
      } finally {
        await client.end();
      }
    };

    const seen: bigint[] = [];
    let cursor: EventCursor = START;
    let seenWhileWriting = 0;
    const tail = async () => {
      for (;;) {
        const done = writersDone > 0;
        const page = await readEvents(db, cursor, 25);
        for (const event of page.events) seen.push(event.id);
        if (page.events.length) cursor = page.events.at(-1)!;
        if (!writersDone) seenWhileWriting = seen.length;
        if (done && !page.heldBack && page.events.length < 25) return;
        // Held back for good (by the other database's transaction): what was seen is checked below.
        if (done && Date.now() - writersDone > 5000) return;
        if (!page.events.length) await sleep(2);
      }
    };

    try {
      const tailer = tail();
      await Promise.all(Array.from({ length: WRITERS }, writer));
      writersDone = Date.now();
      await tailer;
    } finally {
      await elsewhere.query('ROLLBACK');
      await elsewhere.end();
    }

    const committed = (await db.$queryRaw<{ id: bigint }[]>`SELECT id FROM "LeaseEvent" ORDER BY "txId", id`).map(
      (r) => r.id,
    );
    expect(committed.length).toBeGreaterThan(WRITERS * TRANSACTIONS_EACH);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(committed);
    // Most of it was read while the writers ran, under the other database's open transaction.
    expect(seenWhileWriting).toBeGreaterThan(committed.length / 2);
  });
});
