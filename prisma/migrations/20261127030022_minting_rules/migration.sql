-- AlterTable
ALTER TABLE "MintedKey" ADD COLUMN     "earlierKeysUsageUsd" DECIMAL(30,12) NOT NULL DEFAULT 0;

-- mpk_key_has_mint_room: copied from prisma/sql/mpk_key_has_mint_room.sql
-- mpk_key_has_mint_room: a key may mint one more provider key: it is not a MINT key, or it holds
-- fewer minted keys than its cap (Venice allows 500 active keys an account). `mintedKeyCount` counts
-- every minted key not yet confirmed gone at the provider (PENDING ones too: they will exist), kept
-- exact by the statements that grant, bring back and delete. Part of mpk_key_has_room; on its own so
-- that a refused grant can name it as the reason.
CREATE OR REPLACE FUNCTION mpk_key_has_mint_room(k "ManagedKey")
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT k.mode <> 'MINT' OR k."maxMintedKeys" IS NULL OR k."mintedKeyCount" < k."maxMintedKeys"
$$;

-- mpk_key_has_room: copied from prisma/sql/mpk_key_has_room.sql
-- mpk_key_has_room: a key can take one more lease now: it is ACTIVE, under its cap on active
-- leases, under its cap on minted keys (a MINT key), and under its spend limits. The one definition
-- of "full", for grants and for bringing a lease back.
CREATE OR REPLACE FUNCTION mpk_key_has_room(k "ManagedKey", p_day date, p_month date)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT k.status = 'ACTIVE'
     AND (k."maxActiveLeases" IS NULL OR k."activeLeaseCount" < k."maxActiveLeases")
     AND mpk_key_has_mint_room(k)
     AND mpk_key_under_limits(k, p_day, p_month)
$$;

-- mpk_minted_limit: copied from prisma/sql/mpk_minted_limit.sql
-- mpk_minted_limit: the provider-side spend limit a lease's minted key should carry, in USD over the
-- key's life: the lease's spend cap, and no more than the lease's spend so far plus what the minting
-- key's daily and monthly limits still allow now (LEAST skips a window without a limit). Computed
-- when the key is minted and when the cap changes; the provider then enforces it on its own, so a
-- DIRECT agent cannot spend past it whatever MPK's bookkeeping hears. Rounded down to the micro-dollar.
CREATE OR REPLACE FUNCTION mpk_minted_limit(l "Lease", k "ManagedKey", p_day date, p_month date)
RETURNS numeric
LANGUAGE sql STABLE AS $$
  SELECT trunc(least(
    l."spendCapUsd",
    l."usageUsd" + greatest(k."dailyLimitUsd" - mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day), 0),
    l."usageUsd" + greatest(k."monthlyLimitUsd" - mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month), 0)
  ), 6)
$$;

-- mpk_provider_job: copied from prisma/sql/mpk_provider_job.sql
-- mpk_provider_job: queues a provider call on the lease's minted key, inside the transaction of the
-- lease change that calls for it, so that the change and its job commit together or not at all (a
-- crash after the commit leaves the job for the runner; one before it leaves neither). A lease
-- without a minted key (on a SHARED key) queues nothing: NULL. The runner (server/minting/) runs the
-- jobs of one minted key in the order of their ids.
CREATE OR REPLACE FUNCTION mpk_provider_job(p_lease_id uuid, p_kind "ProviderJobKind", p_now timestamp(3))
RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  INSERT INTO "ProviderJob" (kind, "mintedKeyId", "leaseId", "mintingKeyId", "runAfter", "createdAt", "updatedAt")
  SELECT p_kind, m.id, m."leaseId", m."mintingKeyId", p_now, p_now, p_now
  FROM "MintedKey" m WHERE m."leaseId" = p_lease_id
  RETURNING id
$$;

-- mpk_grant_lease: copied from prisma/sql/mpk_grant_lease.sql
-- mpk_grant_lease: a whole lease grant in one call, so the per-provider lock that keeps the pool
-- balanced is held for the body of this function and its commit, not across client round trips.
-- In READ COMMITTED each statement of a volatile function takes a fresh snapshot: every check
-- below sees what was committed by whoever held the user row or the provider lock before us.
--
-- Outcomes: GRANTED, EXISTING (the agent already holds an active lease: that one is returned),
-- OVERDUE (the user holds leases past their expiry: the caller expires them and calls again).
-- Refusals raise MPK's own SQLSTATEs, MK001 (the tier's limit: DETAIL '<tier>:<max>') and MK002 (no
-- key has room; DETAIL 'MINT_CAPACITY' when a MINT key would have had room but for its cap on minted
-- keys), so that the statement rolls back whole and a refused request changes nothing; the
-- lease service maps them by code.
--
-- On a MINT key the grant also writes the lease's MintedKey (PENDING, named mpk-lease-<lease id>,
-- limited by mpk_minted_limit, expiring with the lease), counts it on the key, and queues its CREATE
-- job: the provider key is made by the job runner, durably and at the provider's pace.
CREATE OR REPLACE FUNCTION mpk_grant_lease(
  p_lease_id uuid,
  p_user_id text,
  p_email text,
  p_role "Role",
  p_provider "Provider",
  p_framework "Framework",
  p_agent_id text,
  p_now timestamp(3),
  p_day date,
  p_month date
) RETURNS TABLE (outcome text, lease_id uuid, event_id bigint, tier text, max_active integer, details jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_user "User"%ROWTYPE;
  v_policy "TierPolicy"%ROWTYPE;
  v_existing uuid;
  v_key uuid;
  v_mode "KeyMode";
  v_expires timestamp(3);
  v_event bigint;
  v_details jsonb;
BEGIN
  -- Locks the user row: one user's grants queue here, so the checks below cannot race.
  SELECT * INTO v_user FROM mpk_see_user(p_user_id, p_email, p_role, p_now);
  SELECT * INTO v_policy FROM "TierPolicy" p WHERE p.tier = v_user.tier;

  IF p_agent_id IS NOT NULL THEN
    SELECT l.id INTO v_existing FROM "Lease" l
    WHERE l."userId" = p_user_id AND l."agentId" = p_agent_id AND l.status = 'ACTIVE' AND l."expiresAt" > p_now AND l.provider = p_provider
    ORDER BY l."grantedAt" DESC LIMIT 1;
    IF v_existing IS NOT NULL THEN
      RETURN QUERY SELECT 'EXISTING'::text, v_existing, NULL::bigint, v_user.tier::text, v_policy."maxActiveLeases", NULL::jsonb;
      RETURN;
    END IF;
  END IF;

  IF EXISTS (SELECT 1 FROM "Lease" l WHERE l."userId" = p_user_id AND l.status = 'ACTIVE' AND l."expiresAt" <= p_now) THEN
    RETURN QUERY SELECT 'OVERDUE'::text, NULL::uuid, NULL::bigint, v_user.tier::text, v_policy."maxActiveLeases", NULL::jsonb;
    RETURN;
  END IF;

  IF NOT mpk_user_has_room(p_user_id) THEN
    RAISE EXCEPTION USING ERRCODE = 'MK001', MESSAGE = 'tier limit reached', DETAIL = v_user.tier || ':' || v_policy."maxActiveLeases";
  END IF;

  -- One grant per provider at a time: the least-used key is then really the least used.
  PERFORM pg_advisory_xact_lock(hashtext('mpk:grant:' || p_provider::text));
  SELECT k.id INTO v_key FROM "ManagedKey" k
  WHERE k.provider = p_provider AND mpk_key_has_room(k, p_day, p_month)
  ORDER BY k."activeLeaseCount", k."lastGrantedAt" ASC NULLS FIRST, k.id
  LIMIT 1 FOR UPDATE;
  IF v_key IS NULL THEN
    -- Only the wording depends on this: the decision above is made.
    IF EXISTS (SELECT 1 FROM "ManagedKey" k WHERE k.provider = p_provider AND k.status = 'ACTIVE' AND NOT mpk_key_has_mint_room(k)) THEN
      RAISE EXCEPTION USING ERRCODE = 'MK002', MESSAGE = 'no key available', DETAIL = 'MINT_CAPACITY';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'MK002', MESSAGE = 'no key available';
  END IF;
  SELECT k.mode INTO v_mode FROM "ManagedKey" k WHERE k.id = v_key;

  v_expires := p_now + make_interval(secs => v_policy."leaseDurationSeconds");
  UPDATE "ManagedKey" SET "activeLeaseCount" = "activeLeaseCount" + 1, "lastGrantedAt" = p_now,
    "mintedKeyCount" = "mintedKeyCount" + CASE WHEN v_mode = 'MINT' THEN 1 ELSE 0 END
  WHERE id = v_key;
  INSERT INTO "Lease" (id, "userId", "keyId", status, tier, provider, framework, "agentId", "grantedAt", "expiresAt", "spendCapUsd", "createdAt", "updatedAt")
  VALUES (p_lease_id, p_user_id, v_key, 'ACTIVE', v_user.tier, p_provider, p_framework, p_agent_id, p_now, v_expires, v_policy."spendCapUsd", p_now, p_now);
  IF v_mode = 'MINT' THEN
    INSERT INTO "MintedKey" (id, "leaseId", "mintingKeyId", name, "limitUsd", "expiresAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), l.id, k.id, 'mpk-lease-' || l.id, mpk_minted_limit(l, k, p_day, p_month), v_expires, p_now, p_now
    FROM "Lease" l JOIN "ManagedKey" k ON k.id = l."keyId" WHERE l.id = p_lease_id;
    PERFORM mpk_provider_job(p_lease_id, 'CREATE', p_now);
  END IF;
  UPDATE "User" SET "activeLeaseCount" = "activeLeaseCount" + 1 WHERE id = p_user_id;
  v_details := jsonb_build_object(
    'provider', p_provider, 'framework', p_framework, 'agentId', p_agent_id, 'tier', v_user.tier, 'keyId', v_key,
    'expiresAt', to_char(v_expires, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  PERFORM mpk_audit(p_now, p_user_id, p_role, 'lease.grant', 'Lease', p_lease_id::text, v_details);
  INSERT INTO "LeaseEvent" (type, at, "leaseId", "userId", "keyId", "agentId", "stopAgent", details)
  VALUES ('GRANTED', p_now, p_lease_id, p_user_id, v_key, p_agent_id, false, v_details)
  RETURNING id INTO v_event;
  RETURN QUERY SELECT 'GRANTED'::text, p_lease_id, v_event, v_user.tier::text, v_policy."maxActiveLeases", v_details;
END;
$$;
