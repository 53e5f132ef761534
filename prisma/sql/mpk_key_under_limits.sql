-- mpk_key_under_limits: a key may still spend: its spend in the current UTC day is under its daily
-- limit and its spend in the current UTC month under its monthly limit (a missing limit allows
-- anything; a limit of zero allows nothing). The one definition of "over its limit", for grants,
-- bringing a lease back, resolution and the proxy's admission.
CREATE OR REPLACE FUNCTION mpk_key_under_limits(k "ManagedKey", p_day date, p_month date)
RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (k."dailyLimitUsd" IS NULL OR mpk_window_spend(k."spendDay", k."spendTodayUsd", p_day) < k."dailyLimitUsd")
     AND (k."monthlyLimitUsd" IS NULL OR mpk_window_spend(k."spendMonth", k."spendThisMonthUsd", p_month) < k."monthlyLimitUsd")
$$;
