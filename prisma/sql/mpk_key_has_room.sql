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
