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
