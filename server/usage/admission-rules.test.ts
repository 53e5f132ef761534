// The proxy admits requests from memory, so the rules a request is admitted by run in TypeScript
// as well as in SQL. The same cases go to both: the SQL rule (mpk_lease_refusal, which resolveLease
// answers by) on real rows, the admission snapshot plus the in-memory verdict, and the key's spend
// as the API shows it (mpk_window_spend). They must agree on every case.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../tests/support/db.js';
import { utcDate } from '../core/clock.js';
import { createDb, type Db } from '../db/client.js';
import { currentSpend } from '../keys/spend.js';
import type { LeaseRefusal } from '../leases/refusals.js';
import { admissionRefusal, readSnapshot } from './admission.js';

const NOW = new Date('2026-03-31T23:59:59.000Z');
const DAY = utcDate(NOW, 'day');
const MONTH = utcDate(NOW, 'month');
const YESTERDAY = '2026-03-30';
const LAST_MONTH = '2026-02-01';

interface Case {
  name: string;
  /** The answer both must give. */
  refusal: LeaseRefusal | null;
  lease?: { status?: string; expiresInMs?: number; usage?: string; cap?: string };
  key?: {
    status?: string;
    daily?: string | null;
    spendDay?: string | null;
    today?: string;
    monthly?: string | null;
    spendMonth?: string | null;
    month?: string;
  };
}

const CASES: Case[] = [
  { name: 'fresh lease, no limits', refusal: null },
  { name: 'lease ended', refusal: 'LEASE_NOT_ACTIVE', lease: { status: 'REVOKED' } },
  { name: 'lease suspended', refusal: 'LEASE_SPEND_CAP_REACHED', lease: { status: 'SUSPENDED' } },
  { name: 'lease past its expiry', refusal: 'LEASE_NOT_ACTIVE', lease: { expiresInMs: -1 } },
  { name: 'lease expiring this very moment', refusal: 'LEASE_NOT_ACTIVE', lease: { expiresInMs: 0 } },
  { name: 'key disabled', refusal: 'LEASE_NOT_ACTIVE', key: { status: 'DISABLED' } },
  { name: 'under its cap by a micro-dollar', refusal: null, lease: { usage: '4.999999', cap: '5' } },
  { name: 'exactly at its cap', refusal: 'LEASE_SPEND_CAP_REACHED', lease: { usage: '5', cap: '5' } },
  { name: 'over its cap', refusal: 'LEASE_SPEND_CAP_REACHED', lease: { usage: '5.5', cap: '5' } },
  // Spend is kept to 12 decimals, caps to 6: the snapshot rounds down and must stay exact.
  { name: 'under its cap by half a micro-dollar', refusal: null, lease: { usage: '4.9999995', cap: '5' } },
  {
    name: 'over its cap by a pico-dollar',
    refusal: 'LEASE_SPEND_CAP_REACHED',
    lease: { usage: '5.000000000001', cap: '5' },
  },
  {
    name: 'suspended under its cap',
    refusal: 'LEASE_SPEND_CAP_REACHED',
    lease: { status: 'SUSPENDED', usage: '1', cap: '5' },
  },
  { name: 'suspended and expired', refusal: 'LEASE_NOT_ACTIVE', lease: { status: 'SUSPENDED', expiresInMs: -1 } },
  { name: 'a cap of zero', refusal: 'LEASE_SPEND_CAP_REACHED', lease: { usage: '0', cap: '0' } },
  { name: 'under the daily limit', refusal: null, key: { daily: '10', spendDay: DAY, today: '9.999999' } },
  { name: 'at the daily limit', refusal: 'QUOTA_EXHAUSTED', key: { daily: '10', spendDay: DAY, today: '10' } },
  {
    name: 'under the daily limit by a pico-dollar',
    refusal: null,
    key: { daily: '10', spendDay: DAY, today: '9.999999999999' },
  },
  {
    name: 'over the daily limit by a pico-dollar',
    refusal: 'QUOTA_EXHAUSTED',
    key: { daily: '10', spendDay: DAY, today: '10.000000000001' },
  },
  {
    name: 'lease at its cap and key at its limit',
    refusal: 'LEASE_SPEND_CAP_REACHED',
    lease: { usage: '5', cap: '5' },
    key: { daily: '1', spendDay: DAY, today: '1' },
  },
  {
    name: 'over the daily limit yesterday: a new day',
    refusal: null,
    key: { daily: '10', spendDay: YESTERDAY, today: '50' },
  },
  { name: 'a daily limit of zero, nothing spent yet', refusal: 'QUOTA_EXHAUSTED', key: { daily: '0', spendDay: null } },
  {
    name: 'a daily limit of zero, spent yesterday',
    refusal: 'QUOTA_EXHAUSTED',
    key: { daily: '0', spendDay: YESTERDAY, today: '3' },
  },
  {
    name: 'at the monthly limit',
    refusal: 'QUOTA_EXHAUSTED',
    key: { monthly: '100', spendMonth: MONTH, month: '100' },
  },
  {
    name: 'over the monthly limit last month',
    refusal: null,
    key: { monthly: '100', spendMonth: LAST_MONTH, month: '500' },
  },
  {
    name: 'under both limits',
    refusal: null,
    key: { daily: '10', spendDay: DAY, today: '1', monthly: '100', spendMonth: MONTH, month: '99.99' },
  },
  {
    name: 'at the monthly limit, under the daily',
    refusal: 'QUOTA_EXHAUSTED',
    key: { daily: '10', spendDay: DAY, today: '1', monthly: '100', spendMonth: MONTH, month: '100' },
  },
];

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { maxConnections: 1 });
  await db.$executeRaw`INSERT INTO "User" (id, "updatedAt") VALUES ('rules-user', now())`;
});
afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
});

/** The case's key and lease as rows; returns the lease id. */
async function insert(c: Case): Promise<string> {
  const keyId = randomUUID();
  const leaseId = randomUUID();
  const k = {
    status: 'ACTIVE',
    daily: null,
    spendDay: null,
    today: '0',
    monthly: null,
    spendMonth: null,
    month: '0',
    ...c.key,
  };
  const l = { status: 'ACTIVE', expiresInMs: 3_600_000, usage: '0', cap: '5', ...c.lease };
  await db.$executeRaw`
    INSERT INTO "ManagedKey" (id, provider, label, "secretCiphertext", "maskedKey", "baseUrl", status,
                              "dailyLimitUsd", "spendDay", "spendTodayUsd",
                              "monthlyLimitUsd", "spendMonth", "spendThisMonthUsd", "updatedAt")
    VALUES (${keyId}::uuid, 'OPENROUTER', ${c.name}, 'mpk1.x.y.z', 'sk-...', 'https://example.invalid/v1',
            ${k.status}::"KeyStatus",
            ${k.daily}::numeric, ${k.spendDay}::date, ${k.today}::numeric,
            ${k.monthly}::numeric, ${k.spendMonth}::date, ${k.month}::numeric, now())`;
  await db.$executeRaw`
    INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "grantedAt", "expiresAt",
                         "spendCapUsd", "usageUsd", "updatedAt")
    VALUES (${leaseId}::uuid, 'rules-user', ${keyId}::uuid, ${l.status}::"LeaseStatus", 'FREE', 'OPENROUTER',
            'OPENCLAW', ${NOW},
            ${new Date(NOW.getTime() + l.expiresInMs)}, ${l.cap}::numeric, ${l.usage}::numeric, now())`;
  return leaseId;
}

describe('admission rules: SQL and memory agree', () => {
  it.each(CASES)('$name', async (c) => {
    const leaseId = await insert(c);
    const [sql] = await db.$queryRaw<{ refusal: string | null; today: string; month: string }[]>`
      SELECT mpk_lease_refusal(l, k, ${NOW}, ${DAY}::date, ${MONTH}::date) AS refusal,
             mpk_window_spend(k."spendDay", k."spendTodayUsd", ${DAY}::date)::text AS today,
             mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", ${MONTH}::date)::text AS month
      FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId" WHERE l.id = ${leaseId}::uuid`;

    // The proxy: its snapshot of the rows, then its in-memory verdict.
    const row = (await readSnapshot(db, leaseId, DAY, MONTH))!;
    const micros = (v: bigint | null) => (v === null ? null : Number(v));
    const inMemory = admissionRefusal(
      {
        status: row.status ?? 'MISSING',
        expiresAt: row.expiresAt.getTime(),
        used: Number(row.used),
        cap: Number(row.cap),
      },
      {
        active: row.keyStatus === 'ACTIVE',
        dailyLimit: micros(row.dailyLimit),
        monthlyLimit: micros(row.monthlyLimit),
        spentToday: Number(row.spentToday),
        spentThisMonth: Number(row.spentThisMonth),
      },
      NOW.getTime(),
    );
    expect(sql!.refusal).toBe(c.refusal);
    expect(inMemory).toBe(c.refusal);

    // The API's view of the key's windows.
    const key = await db.managedKey.findUniqueOrThrow({
      where: { id: (await db.lease.findUniqueOrThrow({ where: { id: leaseId } })).keyId },
    });
    const spend = currentSpend(key, NOW);
    expect(spend.today.toString()).toBe(Number(sql!.today).toString());
    expect(spend.month.toString()).toBe(Number(sql!.month).toString());
  });
});
