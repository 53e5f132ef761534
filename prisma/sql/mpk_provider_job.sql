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
