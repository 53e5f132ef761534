-- The event log keeps no foreign key to Lease, as it keeps none to User or ManagedKey: every event
-- is written by the statement that reads or changes its lease's row (grants, ends, usage), and
-- leases are never deleted. The check ran once per inserted row: ~5 ms of a ~50 ms expiry batch of
-- 1,000 leases (bench/README.md, "History at scale").
-- DropForeignKey
ALTER TABLE "LeaseEvent" DROP CONSTRAINT "LeaseEvent_leaseId_fkey";
