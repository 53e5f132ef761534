-- AlterTable
ALTER TABLE "ManagedKey" ADD COLUMN     "providerBalanceUsd" DECIMAL(20,6),
ADD COLUMN     "providerCheckedAt" TIMESTAMP(3),
ADD COLUMN     "providerError" TEXT,
ADD COLUMN     "providerLimitRemainingUsd" DECIMAL(20,6),
ADD COLUMN     "providerLimitUsd" DECIMAL(20,6),
ADD COLUMN     "providerUsageDailyUsd" DECIMAL(20,6),
ADD COLUMN     "providerUsageMonthlyUsd" DECIMAL(20,6);
