-- mpk_lease_refusal: why a request on a lease may not go ahead now, or NULL when it may. The one
-- definition for a worker's resolveLease and the proxy's admission (whose in-memory copy a test
-- holds to this one), so that an agent hears the same reason from both:
--   LEASE_NOT_ACTIVE         the lease has ended (expired, revoked, released) or its key is disabled
--   LEASE_SPEND_CAP_REACHED  the lease is suspended, or at its cap and about to be: an admin can
--                            raise the cap and the lease goes on
--   QUOTA_EXHAUSTED          the key is at its daily or monthly limit: it passes with the window
CREATE OR REPLACE FUNCTION mpk_lease_refusal(l "Lease", k "ManagedKey", p_now timestamp(3), p_day date, p_month date)
RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN l.status NOT IN ('ACTIVE', 'SUSPENDED') OR l."expiresAt" <= p_now OR k.status <> 'ACTIVE'
      THEN 'LEASE_NOT_ACTIVE'
    WHEN l.status = 'SUSPENDED' OR mpk_lease_over_cap(l) THEN 'LEASE_SPEND_CAP_REACHED'
    WHEN NOT mpk_key_under_limits(k, p_day, p_month) THEN 'QUOTA_EXHAUSTED'
  END
$$;
