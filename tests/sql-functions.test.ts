// The rules that live in SQL have one home each: prisma/sql/<function>.sql. The migrated database
// runs exactly those files (a function edited by hand in a migration, or a file changed without
// `npm run db:migration`, fails here), and no other SQL or server code restates a rule.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftedFunctions, SQL_FUNCTIONS, sqlDir } from '../server/db/sql-functions.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

let database: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await database?.drop();
});

describe('SQL rule functions', () => {
  it('has one file per function, and nothing else in prisma/sql', async () => {
    const files = (await readdir(sqlDir)).filter((f) => f.endsWith('.sql')).sort();
    expect(files).toEqual([...SQL_FUNCTIONS].map((f) => `${f}.sql`).sort());
  });

  it('the migrated database runs exactly the function files', async () => {
    expect(await driftedFunctions(client)).toEqual([]);
  });

  it('notices a function changed in the database but not in its file', async () => {
    const { rows } = await client.query<{ def: string }>(
      `SELECT pg_get_functiondef('mpk_lease_over_cap'::regproc) AS def`,
    );
    const original = rows[0]!.def;
    await client.query(original.replace('>=', '>'));
    try {
      expect(await driftedFunctions(client)).toEqual(['mpk_lease_over_cap']);
    } finally {
      await client.query(original);
    }
    expect(await driftedFunctions(client)).toEqual([]);
  });

  it('states each rule in one file only', async () => {
    // The heart of each rule, as SQL would spell it anywhere.
    const rules: { file: string; pattern: RegExp }[] = [
      // (a comparison, not the ledger's assignment `"spendDay" = p_day`)
      {
        file: 'mpk_window_spend.sql',
        pattern:
          /WHEN\s+\S*window\S*\s*=\s*\S*current\S*\s+THEN|(WHEN|WHERE|AND|OR|\()\s*\S*"spend(Day|Month)"\s*(=|IS DISTINCT FROM)/i,
      },
      {
        file: 'mpk_key_under_limits.sql',
        pattern: /<\s*k\."(daily|monthly)LimitUsd"|"spend(Today|ThisMonth)Usd"\s*<\s*\S*"(daily|monthly)LimitUsd"/,
      },
      { file: 'mpk_key_has_room.sql', pattern: /k\."activeLeaseCount"\s*<\s*k\."maxActiveLeases"/ },
      {
        file: 'mpk_user_has_room.sql',
        pattern: /\."activeLeaseCount"\s*(<|>=)\s*(p|v_policy|limits)\."maxActiveLeases"|active\s*>=\s*\S*max\b/,
      },
      { file: 'mpk_lease_over_cap.sql', pattern: /"usageUsd"\s*>=?\s*\S*"spendCapUsd"/ },
      // A lease usable for requests: not ended, not past its expiry, on an active key.
      { file: 'mpk_lease_refusal.sql', pattern: /"expiresAt"\s*(<=|>)\s*\S+\s+(OR|AND)\s+k\.status/ },
      { file: 'mpk_audit_each.sql', pattern: /INSERT\s+INTO\s+"AuditEntry"/i },
      { file: 'mpk_see_user.sql', pattern: /INSERT\s+INTO\s+"User"/i },
    ];
    const sources: { name: string; text: string }[] = [];
    for (const file of await readdir(sqlDir))
      sources.push({ name: file, text: await readFile(path.join(sqlDir, file), 'utf8') });
    const serverDir = path.resolve(import.meta.dirname, '../server');
    for (const file of await readdir(serverDir, { recursive: true })) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts') || file.includes('generated')) continue;
      sources.push({ name: `server/${file}`, text: await readFile(path.join(serverDir, file), 'utf8') });
    }
    for (const rule of rules) {
      const homes = sources.filter((s) => rule.pattern.test(s.text)).map((s) => s.name);
      expect(homes, rule.file).toEqual([rule.file]);
    }
  });
});
