-- mpk_minted_limit: the provider-side spend limit a lease's minted key should carry, in USD over the
-- key's life: the lease's spend cap, and no more than the lease's spend so far plus what the minting
-- key's daily and monthly limits still allow now (a window without a limit adds no bound: its CASE
-- is NULL, which LEAST skips). Computed when the key is minted and when the cap changes; the provider
-- then enforces it on its own, so a DIRECT agent cannot spend past it whatever MPK's bookkeeping
-- hears. Rounded down to the micro-dollar.
CREATE OR REPLACE FUNCTION mpk_minted_limit(l "Lease", k "ManagedKey", p_day date, p_month date)
RETURNS numeric
LANGUAGE sql STABLE AS $$
  SELECT trunc(least(
    l."spendCapUsd",
    CASE WHEN k."dailyLimitUsd" IS NOT NULL THEN
      l."usageUsd" + greatest(k."dailyLimitUsd" - mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day), 0) END,
    CASE WHEN k."monthlyLimitUsd" IS NOT NULL THEN
      l."usageUsd" + greatest(k."monthlyLimitUsd" - mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month), 0) END
  ), 6)
$$;
