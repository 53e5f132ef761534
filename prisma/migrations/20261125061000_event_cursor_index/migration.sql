-- DropIndex
DROP INDEX "LeaseEvent_txId_idx";

-- CreateIndex
CREATE INDEX "LeaseEvent_txId_id_idx" ON "LeaseEvent"("txId", "id");
