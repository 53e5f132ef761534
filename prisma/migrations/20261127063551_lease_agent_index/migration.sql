-- CreateIndex
CREATE INDEX "Lease_agentId_grantedAt_id_idx" ON "Lease"("agentId", "grantedAt", "id");
