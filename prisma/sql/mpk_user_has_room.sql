-- mpk_user_has_room: a user may hold one more active lease: their active leases are under their
-- tier's limit. The one definition of the tier limit, for grants and for bringing a lease back.
CREATE OR REPLACE FUNCTION mpk_user_has_room(p_user_id text)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT u."activeLeaseCount" < p."maxActiveLeases" FROM "User" u JOIN "TierPolicy" p ON p.tier = u.tier WHERE u.id = p_user_id), false)
$$;
