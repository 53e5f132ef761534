-- mpk_lease_over_cap: a lease has spent its cap (and so is suspended, or stays so). The one
-- definition, for the ledger, the suspension and a change of cap.
CREATE OR REPLACE FUNCTION mpk_lease_over_cap(l "Lease")
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT l."usageUsd" >= l."spendCapUsd"
$$;
