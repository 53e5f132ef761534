-- DropIndex
DROP INDEX "AuditEntry_targetType_targetId_idx";

-- DropIndex
DROP INDEX "Lease_status_expiresAt_idx";

-- DropIndex
DROP INDEX "LeaseEvent_leaseId_idx";

-- CreateIndex
CREATE INDEX "AuditEntry_targetId_id_idx" ON "AuditEntry"("targetId", "id");

-- CreateIndex
CREATE INDEX "Lease_live_expiresAt_id_idx" ON "Lease"("expiresAt", "id") WHERE (status = ANY (ARRAY['ACTIVE'::"LeaseStatus", 'SUSPENDED'::"LeaseStatus"]));

-- CreateIndex
CREATE INDEX "Lease_userId_agentId_grantedAt_id_idx" ON "Lease"("userId", "agentId", "grantedAt", "id");

-- CreateIndex
CREATE INDEX "LeaseEvent_leaseId_txId_id_idx" ON "LeaseEvent"("leaseId", "txId", "id");

-- CreateIndex
CREATE INDEX "LeaseEvent_userId_txId_id_idx" ON "LeaseEvent"("userId", "txId", "id");

-- CreateIndex
CREATE INDEX "LeaseEvent_keyId_txId_id_idx" ON "LeaseEvent"("keyId", "txId", "id");
