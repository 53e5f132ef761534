-- DropIndex
DROP INDEX "Lease_userId_status_agentId_idx";

-- CreateIndex
CREATE INDEX "Lease_live_userId_agentId_idx" ON "Lease"("userId", "agentId") WHERE (status = ANY (ARRAY['ACTIVE'::"LeaseStatus", 'SUSPENDED'::"LeaseStatus"]));
