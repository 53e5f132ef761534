-- CreateIndex
CREATE INDEX "UsageRecord_leaseId_at_idx" ON "UsageRecord"("leaseId", "at");

-- CreateIndex
CREATE INDEX "User_createdAt_id_idx" ON "User"("createdAt", "id");
