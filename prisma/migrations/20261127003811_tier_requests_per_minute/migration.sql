-- AlterTable
ALTER TABLE "TierPolicy" ADD COLUMN     "requestsPerMinute" INTEGER;
