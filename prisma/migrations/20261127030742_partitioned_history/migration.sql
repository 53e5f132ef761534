-- History partitioned by UTC month (issue 13): LeaseEvent, AuditEntry and UsageRecord become
-- tables partitioned by RANGE on "at", one partition per month ("UsageRecord_2026_11") and a
-- DEFAULT partition each, so that no write ever fails for a month whose partition does not exist
-- yet. Prisma cannot express partitions: this migration is written by hand. It copies the history
-- once (ids kept, the id sequences kept and so continued), creates partitions for every month that
-- holds rows and for the current month and the next two, and builds the indexes and foreign keys
-- on the partitioned tables. From here on the scheduler's partition job creates months ahead and
-- drops the ones past retention (server/db/partitions.ts).
--
-- The primary keys become (id, at): a unique index on a partitioned table must include the
-- partition key. UsageRecord's unique (leaseId, requestId) cannot stay for the same reason: it
-- becomes a plain index, and mpk_record_usage keeps a request counting once under the lease's
-- row lock (see prisma/sql/mpk_record_usage.sql).

-- CreateTable
CREATE TABLE "HistoryHorizon" (
    "table" TEXT NOT NULL,
    "before" TIMESTAMP(3) NOT NULL,
    "txId" BIGINT,
    "eventId" BIGINT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "HistoryHorizon_pkey" PRIMARY KEY ("table")
);

-- mpk_month_partition: copied from prisma/sql/mpk_month_partition.sql
-- mpk_month_partition: the partition of a history table (LeaseEvent, AuditEntry, UsageRecord; each
-- partitioned by RANGE on "at", one partition per UTC month, plus a DEFAULT partition) for the
-- month holding p_month, named "<table>_YYYY_MM". Created only if missing. Rows the DEFAULT
-- partition already holds for that month (written before the partition existed) are moved into
-- the new partition in this transaction, before it is attached: PostgreSQL refuses to attach a
-- range that the DEFAULT partition still has rows in. The DEFAULT partition is locked first, so no
-- write can slip a row of the month into it meanwhile (writes to other partitions go on).
-- Returns the rows moved, or NULL when the partition existed already.
CREATE OR REPLACE FUNCTION mpk_month_partition(p_table text, p_month date)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_from date := date_trunc('month', p_month)::date;
  v_to date := (date_trunc('month', p_month) + interval '1 month')::date;
  v_name text := p_table || '_' || to_char(date_trunc('month', p_month), 'YYYY_MM');
  v_moved bigint;
BEGIN
  IF p_table NOT IN ('LeaseEvent', 'AuditEntry', 'UsageRecord') THEN
    RAISE EXCEPTION 'mpk_month_partition: % is not a history table', p_table;
  END IF;
  IF to_regclass(format('%I', v_name)) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_table || '_default');
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', v_name, p_table);
  EXECUTE format(
    'WITH moved AS (DELETE FROM %I WHERE at >= %L AND at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
    p_table || '_default', v_from, v_to, v_name);
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', p_table, v_name, v_from, v_to);
  RETURN v_moved;
END;
$$;

-- The unpartitioned tables step aside, without the constraints and indexes whose names the
-- partitioned ones take; their id sequences stay and pass to the new tables.
ALTER TABLE "LeaseEvent" RENAME TO "LeaseEvent_unpartitioned";
ALTER TABLE "LeaseEvent_unpartitioned" DROP CONSTRAINT "LeaseEvent_pkey", DROP CONSTRAINT "LeaseEvent_leaseId_fkey";
DROP INDEX "LeaseEvent_leaseId_txId_id_idx", "LeaseEvent_userId_txId_id_idx", "LeaseEvent_keyId_txId_id_idx", "LeaseEvent_txId_id_idx";

ALTER TABLE "AuditEntry" RENAME TO "AuditEntry_unpartitioned";
ALTER TABLE "AuditEntry_unpartitioned" DROP CONSTRAINT "AuditEntry_pkey";
DROP INDEX "AuditEntry_targetId_id_idx";

ALTER TABLE "UsageRecord" RENAME TO "UsageRecord_unpartitioned";
ALTER TABLE "UsageRecord_unpartitioned" DROP CONSTRAINT "UsageRecord_pkey", DROP CONSTRAINT "UsageRecord_leaseId_fkey",
  DROP CONSTRAINT "UsageRecord_keyId_fkey";
DROP INDEX "UsageRecord_leaseId_requestId_key", "UsageRecord_keyId_at_idx", "UsageRecord_leaseId_at_idx";

CREATE TABLE "LeaseEvent" (
    "id" BIGINT NOT NULL DEFAULT nextval('"LeaseEvent_id_seq"'),
    "txId" BIGINT NOT NULL DEFAULT ((pg_current_xact_id())::text)::bigint,
    "type" "LeaseEventType" NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "leaseId" UUID NOT NULL,
    "userId" TEXT NOT NULL,
    "keyId" UUID NOT NULL,
    "agentId" TEXT,
    "stopAgent" BOOLEAN NOT NULL,
    "details" JSONB NOT NULL DEFAULT '{}'
) PARTITION BY RANGE ("at");
ALTER SEQUENCE "LeaseEvent_id_seq" OWNED BY "LeaseEvent"."id";
CREATE TABLE "LeaseEvent_default" PARTITION OF "LeaseEvent" DEFAULT;

CREATE TABLE "AuditEntry" (
    "id" BIGINT NOT NULL DEFAULT nextval('"AuditEntry_id_seq"'),
    "at" TIMESTAMP(3) NOT NULL,
    "actorId" TEXT NOT NULL,
    "actorRole" "Role" NOT NULL,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT,
    "details" JSONB NOT NULL DEFAULT '{}'
) PARTITION BY RANGE ("at");
ALTER SEQUENCE "AuditEntry_id_seq" OWNED BY "AuditEntry"."id";
CREATE TABLE "AuditEntry_default" PARTITION OF "AuditEntry" DEFAULT;

CREATE TABLE "UsageRecord" (
    "id" BIGINT NOT NULL DEFAULT nextval('"UsageRecord_id_seq"'),
    "leaseId" UUID NOT NULL,
    "keyId" UUID NOT NULL,
    "requestId" TEXT NOT NULL,
    "providerRequestId" TEXT,
    "model" TEXT,
    "promptTokens" INTEGER,
    "completionTokens" INTEGER,
    "costUsd" DECIMAL(30,12) NOT NULL,
    "costSource" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL
) PARTITION BY RANGE ("at");
ALTER SEQUENCE "UsageRecord_id_seq" OWNED BY "UsageRecord"."id";
CREATE TABLE "UsageRecord_default" PARTITION OF "UsageRecord" DEFAULT;

-- A partition for every month that holds history, and for this month and the next two; then the
-- rows, each into its month, ids as they were.
DO $$
DECLARE
  v_table text;
  v_month date;
BEGIN
  FOREACH v_table IN ARRAY ARRAY['LeaseEvent', 'AuditEntry', 'UsageRecord'] LOOP
    FOR v_month IN EXECUTE format(
      'SELECT DISTINCT date_trunc(''month'', at)::date FROM %I
       UNION SELECT (date_trunc(''month'', now() AT TIME ZONE ''UTC'') + n * interval ''1 month'')::date
             FROM generate_series(0, 2) n
       ORDER BY 1', v_table || '_unpartitioned')
    LOOP
      PERFORM mpk_month_partition(v_table, v_month);
    END LOOP;
  END LOOP;
END;
$$;

INSERT INTO "LeaseEvent" ("id", "txId", "type", "at", "leaseId", "userId", "keyId", "agentId", "stopAgent", "details")
SELECT "id", "txId", "type", "at", "leaseId", "userId", "keyId", "agentId", "stopAgent", "details" FROM "LeaseEvent_unpartitioned";
INSERT INTO "AuditEntry" ("id", "at", "actorId", "actorRole", "action", "targetType", "targetId", "details")
SELECT "id", "at", "actorId", "actorRole", "action", "targetType", "targetId", "details" FROM "AuditEntry_unpartitioned";
INSERT INTO "UsageRecord" ("id", "leaseId", "keyId", "requestId", "providerRequestId", "model", "promptTokens",
                           "completionTokens", "costUsd", "costSource", "at")
SELECT "id", "leaseId", "keyId", "requestId", "providerRequestId", "model", "promptTokens",
       "completionTokens", "costUsd", "costSource", "at" FROM "UsageRecord_unpartitioned";

DROP TABLE "LeaseEvent_unpartitioned", "AuditEntry_unpartitioned", "UsageRecord_unpartitioned";

-- The sequences were kept, so they are past every copied id already; this only makes sure.
SELECT setval('"LeaseEvent_id_seq"', m) FROM (SELECT max("id") AS m FROM "LeaseEvent") s
WHERE m > (SELECT last_value FROM "LeaseEvent_id_seq");
SELECT setval('"AuditEntry_id_seq"', m) FROM (SELECT max("id") AS m FROM "AuditEntry") s
WHERE m > (SELECT last_value FROM "AuditEntry_id_seq");
SELECT setval('"UsageRecord_id_seq"', m) FROM (SELECT max("id") AS m FROM "UsageRecord") s
WHERE m > (SELECT last_value FROM "UsageRecord_id_seq");

-- Keys, indexes and foreign keys on the partitioned tables (each partition gets its own), built
-- once the rows are in.
ALTER TABLE "LeaseEvent" ADD CONSTRAINT "LeaseEvent_pkey" PRIMARY KEY ("id", "at");
CREATE INDEX "LeaseEvent_leaseId_txId_id_idx" ON "LeaseEvent"("leaseId", "txId", "id");
CREATE INDEX "LeaseEvent_userId_txId_id_idx" ON "LeaseEvent"("userId", "txId", "id");
CREATE INDEX "LeaseEvent_keyId_txId_id_idx" ON "LeaseEvent"("keyId", "txId", "id");
CREATE INDEX "LeaseEvent_txId_id_idx" ON "LeaseEvent"("txId", "id");
ALTER TABLE "LeaseEvent" ADD CONSTRAINT "LeaseEvent_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

ALTER TABLE "AuditEntry" ADD CONSTRAINT "AuditEntry_pkey" PRIMARY KEY ("id", "at");
CREATE INDEX "AuditEntry_targetId_id_idx" ON "AuditEntry"("targetId", "id");

ALTER TABLE "UsageRecord" ADD CONSTRAINT "UsageRecord_pkey" PRIMARY KEY ("id", "at");
CREATE INDEX "UsageRecord_leaseId_requestId_idx" ON "UsageRecord"("leaseId", "requestId");
CREATE INDEX "UsageRecord_keyId_at_idx" ON "UsageRecord"("keyId", "at");
CREATE INDEX "UsageRecord_leaseId_at_idx" ON "UsageRecord"("leaseId", "at");
ALTER TABLE "UsageRecord" ADD CONSTRAINT "UsageRecord_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "UsageRecord" ADD CONSTRAINT "UsageRecord_keyId_fkey" FOREIGN KEY ("keyId") REFERENCES "ManagedKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- The planner's figures for the new tables at once, not at autovacuum's next visit.
ANALYZE "LeaseEvent", "AuditEntry", "UsageRecord";

-- mpk_record_usage: copied from prisma/sql/mpk_record_usage.sql
-- mpk_record_usage: a batch of metered requests written in one call, so that the row locks on the
-- key and the lease are held for the body of this function and its commit, not across client
-- round trips (a busy lease is one row every batch has to lock).
--
-- Locks keys, then leases, each in id order (the global lock order without the users). Each
-- request counts once per (lease, requestId): the ledger is partitioned by month, so no unique
-- index can hold that pair (a unique index must include the partition key); instead the first
-- report of a pair in the batch is kept, and only if the ledger has none yet. That check is exact
-- because every writer of the ledger is this function and holds the lease's row lock: a batch of
-- the same lease waits above until this one commits, and the statement below, in a VOLATILE
-- function at READ COMMITTED, reads with a snapshot taken after the lock was granted. Lease totals and the key's UTC day and month spend
-- are increments. A request metered before midnight and written after counts in the ledger and
-- its lease's total, not in the new day's spend. One USAGE event per lease per batch. The daily
-- rollups (UsageDaily, UsageLeaseDaily) are upserted in the same statement as the ledger rows.
-- Returns the events written, each row also carrying the ids of the leases that reached their
-- spend cap (the caller suspends those).
CREATE OR REPLACE FUNCTION mpk_record_usage(
  p_rows jsonb,
  p_now timestamp(3),
  p_day date,
  p_month date,
  p_reported_by text
) RETURNS TABLE (id bigint, type text, at timestamp(3), "leaseId" text, "userId" text, "keyId" text, "agentId" text, "stopAgent" boolean, details jsonb, capped text[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_leases uuid[];
BEGIN
  SELECT array_agg(DISTINCT (r->>'leaseId')::uuid) INTO v_leases FROM jsonb_array_elements(p_rows) r;
  PERFORM 1 FROM "ManagedKey" k WHERE k.id IN (SELECT l."keyId" FROM "Lease" l WHERE l.id = ANY(v_leases)) ORDER BY k.id FOR UPDATE;
  PERFORM 1 FROM "Lease" l WHERE l.id = ANY(v_leases) ORDER BY l.id FOR UPDATE;

  RETURN QUERY
  WITH input AS (
    -- In the batch's order, so that ledger ids follow the order requests were metered in.
    SELECT x.*, e.ord FROM jsonb_array_elements(p_rows) WITH ORDINALITY e(r, ord),
      jsonb_to_record(e.r)
      AS x("leaseId" uuid, "requestId" text, "providerRequestId" text, model text, "promptTokens" int,
           "completionTokens" int, "costUsd" numeric, "costSource" text, at timestamptz)
  ), fresh AS (
    -- The first report of each (lease, requestId) in the batch, unless the ledger has it already.
    SELECT DISTINCT ON (i."leaseId", i."requestId") i.*
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM "UsageRecord" u WHERE u."leaseId" = i."leaseId" AND u."requestId" = i."requestId")
    ORDER BY i."leaseId", i."requestId", i.ord
  ), ins AS (
    INSERT INTO "UsageRecord" ("leaseId", "keyId", "requestId", "providerRequestId", model, "promptTokens",
                               "completionTokens", "costUsd", "costSource", at)
    SELECT i."leaseId", l."keyId", i."requestId", i."providerRequestId", i.model, i."promptTokens",
           i."completionTokens", i."costUsd", i."costSource", coalesce(i.at AT TIME ZONE 'UTC', p_now)
    FROM fresh i JOIN "Lease" l ON l.id = i."leaseId"
    ORDER BY i.ord
    RETURNING "UsageRecord"."leaseId", "UsageRecord"."keyId", "UsageRecord"."costUsd", "UsageRecord".at,
              "UsageRecord".model, "UsageRecord"."promptTokens", "UsageRecord"."completionTokens"
  ), daily AS (
    -- The rollups, in the same statement as the rows they sum: spend series and each user's month
    -- read these, never the ledger. Keys and leases are locked above, so no two batches race here.
    INSERT INTO "UsageDaily" AS d (day, "keyId", model, "costUsd", requests, "promptTokens", "completionTokens")
    SELECT ins.at::date, ins."keyId", coalesce(ins.model, ''), sum(ins."costUsd"), count(*),
           coalesce(sum(ins."promptTokens"), 0), coalesce(sum(ins."completionTokens"), 0)
    FROM ins GROUP BY 1, 2, 3
    ON CONFLICT (day, "keyId", model) DO UPDATE SET
      "costUsd" = d."costUsd" + excluded."costUsd", requests = d.requests + excluded.requests,
      "promptTokens" = d."promptTokens" + excluded."promptTokens",
      "completionTokens" = d."completionTokens" + excluded."completionTokens"
  ), lease_daily AS (
    INSERT INTO "UsageLeaseDaily" AS d (day, "leaseId", "userId", "keyId", "costUsd", requests)
    SELECT ins.at::date, ins."leaseId", l."userId", ins."keyId", sum(ins."costUsd"), count(*)
    FROM ins JOIN "Lease" l ON l.id = ins."leaseId" GROUP BY 1, 2, 3, 4
    ON CONFLICT ("leaseId", day) DO UPDATE SET
      "costUsd" = d."costUsd" + excluded."costUsd", requests = d.requests + excluded.requests
  ), lease_totals AS (
    UPDATE "Lease" l SET "usageUsd" = l."usageUsd" + s.total, "requestCount" = l."requestCount" + s.n, "lastUsedAt" = p_now
    FROM (SELECT ins."leaseId", sum(ins."costUsd") AS total, count(*)::int AS n FROM ins GROUP BY 1) s WHERE l.id = s."leaseId"
    RETURNING l.id, l.status = 'ACTIVE' AND mpk_lease_over_cap(l) AS capped
  ), key_totals AS (
    UPDATE "ManagedKey" k SET
      "spendTodayUsd" = mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day) + s.today,
      "spendDay" = p_day,
      "spendThisMonthUsd" = mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month) + s.month,
      "spendMonth" = p_month,
      "lastUsedAt" = p_now
    FROM (SELECT ins."keyId",
                 coalesce(sum(ins."costUsd") FILTER (WHERE ins.at::date = p_day), 0) AS today,
                 coalesce(sum(ins."costUsd") FILTER (WHERE date_trunc('month', ins.at)::date = p_month), 0) AS month
          FROM ins GROUP BY 1) s WHERE k.id = s."keyId"
  ), event AS (
    INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
    SELECT 'USAGE', p_now, l.id, l."userId", l."keyId", l."agentId", false,
           jsonb_build_object('requests', s.n, 'costUsd', s.total::text, 'reportedBy', p_reported_by)
    FROM (SELECT ins."leaseId", count(*)::int AS n, sum(ins."costUsd") AS total FROM ins GROUP BY 1) s JOIN "Lease" l ON l.id = s."leaseId"
    RETURNING "LeaseEvent".id, "LeaseEvent".type::text, "LeaseEvent".at, "LeaseEvent"."leaseId"::text, "LeaseEvent"."userId",
              "LeaseEvent"."keyId"::text, "LeaseEvent"."agentId", "LeaseEvent"."stopAgent", "LeaseEvent".details
  )
  SELECT e.*, ARRAY(SELECT t.id::text FROM lease_totals t WHERE t.capped) FROM event e;
END;
$$;
